"""manage.py mcp: the MCP server over stdio, for desktop AI clients that start it as a process.

The API token comes from the environment (MCP_API_TOKEN), never from the command line, where
other users of the machine could read it. stdout carries JSON-RPC only: everything else,
including refusals, goes to stderr."""

import os

from django.core.management.base import BaseCommand, CommandError

from config.mcp import serve_stdio
from rbac.authentication import user_for_token

TOKEN_VARIABLE = "MCP_API_TOKEN"
MISSING_TOKEN_MESSAGE = (f"Set {TOKEN_VARIABLE} to a personal API token (create one with "
                         "`manage.py create_api_token <username>` or on your profile page).")
INVALID_TOKEN_MESSAGE = f"{TOKEN_VARIABLE} is not a valid API token: unknown, expired or revoked."


class Command(BaseCommand):
    help = f"Serve the MCP tools over stdio as the user of the API token in ${TOKEN_VARIABLE}."
    # System check warnings would be written to stdout, which belongs to the protocol.
    requires_system_checks = []

    def handle(self, *args, **options):
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        if not token:
            raise CommandError(MISSING_TOKEN_MESSAGE)
        if user_for_token(token)[0] is None:
            raise CommandError(INVALID_TOKEN_MESSAGE)
        serve_stdio(token)
