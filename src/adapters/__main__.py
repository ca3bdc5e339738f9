"""`python -m adapters`: the same as the `billing` command."""

from adapters.cli import main

raise SystemExit(main())
