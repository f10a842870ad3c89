"""Entry point of ``python -m triggers_dynamodb`` (see :mod:`triggers_dynamodb.cli`)."""

import sys

from triggers_dynamodb.cli import main

if __name__ == "__main__":
    sys.exit(main())
