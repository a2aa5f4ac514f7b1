"""``python -m provenance``: the command line."""

import sys

from provenance.cli import main

sys.exit(main())
