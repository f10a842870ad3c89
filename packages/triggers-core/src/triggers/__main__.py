"""``python -m triggers``: the same as the ``triggers`` command."""

import sys

from triggers.cli import main

sys.exit(main())
