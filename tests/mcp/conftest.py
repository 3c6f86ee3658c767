"""Driving the MCP server with the SDK's own client: over streamable HTTP against config.asgi
served by a real uvicorn on loopback, over stdio against a real `manage.py mcp` process, and
in-process (the SDK's memory transport) for the permission matrix. Tool calls run in the
server's worker threads, so tests commit their data (transaction=True)."""

import os
import sys
from contextlib import contextmanager
from functools import partial

import httpx2
import pytest
from anyio.from_thread import start_blocking_portal
from django.conf import settings
from django.db import connection
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from rbac import services as rbac_services


@pytest.fixture(autouse=True)
def storage_per_test(isolated_storage):
    """Every MCP test gets a storage location of its own (tests/conftest.py)."""



class SyncClient:
    """The SDK client behind a blocking portal, so plain (sync) tests can hold one connection."""

    def __init__(self, portal, client):
        self.portal = portal
        self.client = client

    def tools(self):
        return self.portal.call(self.client.list_tools).tools

    def call(self, tool: str, /, **arguments):
        return self.portal.call(partial(self.client.call_tool, tool, arguments))


@contextmanager
def connected(target, **options):
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(target, **options)) as client:
        yield SyncClient(portal, client)


def token_for(user) -> str:
    return rbac_services.api_token_create(actor=user, user=user, name="mcp")[1]


def http_transport(base_url: str, token: str | None, path: str = "/mcp/"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return streamable_http_client(base_url + path, http_client=httpx2.AsyncClient(headers=headers, timeout=30))


@pytest.fixture
def over_http(asgi_url):
    """over_http(user_or_token) → a connected SyncClient authenticated with that user's new token."""

    def connect(who):
        token = who if isinstance(who, str) else token_for(who)
        return connected(http_transport(asgi_url, token))

    return connect


def stdio_parameters(token: str | None) -> StdioServerParameters:
    """`manage.py mcp` as a subprocess on the test database (the test must commit its data)."""
    database = connection.settings_dict
    url = (f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
           f"{database['NAME']}")
    env = {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONPATH": str(settings.BASE_DIR)}
    env.update({name: value for name, value in os.environ.items() if name.startswith("S3_") or name == "REDIS_URL"})
    if token is not None:
        env["MCP_API_TOKEN"] = token
    return StdioServerParameters(command=sys.executable, args=["manage.py", "mcp"], env=env, cwd=settings.BASE_DIR)


@pytest.fixture
def over_stdio():
    def connect(who):
        token = who if isinstance(who, str) else token_for(who)
        return connected(stdio_parameters(token))

    return connect
