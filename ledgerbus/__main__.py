from ledgerbus.cli import main

raise SystemExit(main())
