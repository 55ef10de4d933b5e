"""The benchmark table: figure, ceiling, ratio and goal, printed and written as Markdown."""

from dataclasses import dataclass
from pathlib import Path

RESULTS_DIRECTORY = Path(__file__).with_name("results")


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    value: float
    unit: str
    ceiling_name: str
    ceiling: float
    goal_ratio: float | None
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.ceiling if self.ceiling else 0.0

    @property
    def verdict(self) -> str:
        if self.goal_ratio is None:
            return "-"
        return "met" if self.ratio >= self.goal_ratio else f"missed (goal {self.goal_ratio:g})"


def render(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        "| figure | value | ceiling (same run) | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.figure} | {row.value:,.0f} {row.unit} | {row.ceiling_name}: {row.ceiling:,.0f}"
            f" {row.unit} | {row.ratio:.2f} | {row.verdict} |"
        )
    details = [f"- {row.figure}: {row.detail}" for row in rows if row.detail]
    return "\n".join([*lines, "", *details, ""])


def write(text: str) -> Path:
    RESULTS_DIRECTORY.mkdir(exist_ok=True)
    path = RESULTS_DIRECTORY / "latest.md"
    path.write_text(text)
    return path
