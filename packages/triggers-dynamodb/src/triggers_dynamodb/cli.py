"""``python -m triggers_dynamodb``: create or check the session table.

For teams that do not manage the table with infrastructure code::

    python -m triggers_dynamodb create-table --table-name triggers --region-name eu-west-1
    python -m triggers_dynamodb check-table --table-name triggers --endpoint-url http://localhost:8000

Credentials come from boto3's usual chain (environment, profile, role).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from triggers.errors import TriggersError
from triggers_dynamodb.backend import DynamoDBStorageBackend

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m triggers_dynamodb",
        description="Create or check the DynamoDB table that holds Triggers sessions.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("create-table", "create the table (on-demand billing, TTL on expires_at); idempotent"),
        ("check-table", "check that the table exists and is keyed pk/sk"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--table-name", required=True)
        command.add_argument("--region-name", default=None, help="default: boto3's configuration")
        command.add_argument("--endpoint-url", default=None, help="e.g. http://localhost:8000")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; print what was done; 0 on success, 1 on a store error."""
    arguments = _parser().parse_args(argv)
    where = {"table_name": arguments.table_name, "region_name": arguments.region_name,
             "endpoint_url": arguments.endpoint_url}
    try:
        if arguments.command == "create-table":
            lines = DynamoDBStorageBackend.create_schema(**where)
        else:
            lines = DynamoDBStorageBackend.check_schema(**where)
    except TriggersError as error:  # a store error, or a bad option (no region...)
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
