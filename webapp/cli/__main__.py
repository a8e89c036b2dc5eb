"""`python -m webapp.cli`: the `medal` command."""

import sys

from webapp.cli import main

sys.exit(main())
