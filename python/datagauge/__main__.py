"""``python -m datagauge`` runs the command line."""

import sys

from .cli import main

if __name__ == "__main__":  # spawned worker processes import this module again: run once
    sys.exit(main())
