"""`python -m responseiq_billing`: the same as the `billing` command."""

from responseiq_billing.adapters.cli import main

raise SystemExit(main())
