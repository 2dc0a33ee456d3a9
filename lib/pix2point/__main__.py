"""`python -m pix2point ...`: the CLI through the interpreter itself, so it works wherever that interpreter runs
(a Ray job, a head started as .venv/bin/ray start) whatever PATH holds."""

import sys

from pix2point.cli import main

sys.exit(main())
