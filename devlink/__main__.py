"""`python -m devlink` is the same as the `devlink` command."""

from devlink.cli import main

raise SystemExit(main())
