"""Money as the wallet shows it: integer paisa inside, taka with two decimals where asked."""

CURRENCY = "BDT"
PAISA_PER_TAKA = 100


def taka(paisa: int) -> str:
    """Paisa as taka with two decimals, exactly (no float on the way): 500000 is `5000.00`."""
    sign = "-" if paisa < 0 else ""
    whole, cents = divmod(abs(paisa), PAISA_PER_TAKA)
    return f"{sign}{whole}.{cents:02d}"
