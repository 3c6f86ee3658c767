"""Benchmark 8, MCP: get_settlement tool calls/s through the official SDK client over streamable
HTTP, against the same REST call (GET /api/settlements/<id>/) with the same token, from the same
uvicorn server serving config.asgi, over keep-alive httpx2 connections (the client library the
SDK's transport uses too), at the same concurrency.

The headline figure is one session calling sequentially; a few concurrent sessions, the cost of
opening a session (the SDK's handshake, and the first call that also fetches the tool listing),
the queries and the PostgreSQL connections each side needs per call are reported beside it. The
issue sets no bound, so the ratio is reported, not judged."""

import asyncio
import json
import statistics
import subprocess
import sys
import time

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from .api import member_token
from .operations import BENCH_MEMBER
from .runner import ROOT, Bench, Measurement
from .server import serve

TOOL = "get_settlement"
CALLS = 200
QUICK_CALLS = 50
WARMUP_CALLS = 10
SESSIONS = 4  # concurrent sessions of the secondary figure
HANDSHAKES = 5
SETTLEMENTS = 20  # the calls cycle through this many readable settlements
CONNECTION_PROBE_CALLS = 20
STATS_DELAY = 1.0  # a closing backend's session reaches pg_stat_database within this
WORKERS = 2
TIMEOUT = 60


def calls_per_run(bench: Bench) -> int:
    return bench.mcp_calls or (QUICK_CALLS if bench.scale < 0.1 else CALLS)


def readable_settlements(bench: Bench, database: str) -> list[int]:
    """Active settlements in projects bench-member belongs to (an Admin there: settlements:read)."""
    rows = bench.query(database, """
        SELECT DISTINCT s.id FROM settlements_settlement s
        JOIN settlements_settlementproject sp ON sp.settlement_id = s.id
        JOIN rbac_membership m ON m.project_id = sp.project_id
        JOIN auth_user u ON u.id = m.user_id
        WHERE s.is_active AND u.username = %s ORDER BY s.id LIMIT %s""", (BENCH_MEMBER, SETTLEMENTS))
    if not rows:
        raise RuntimeError("bench-member can read no settlement in this dataset")
    return [row[0] for row in rows]


def queries_per_call(bench: Bench, database: str, token: str, settlement: int) -> dict:
    arguments = {"mode": "settlement", "token": token, "settlement": settlement}
    completed = subprocess.run([sys.executable, "-m", "bench.api_probe", json.dumps(arguments)], cwd=ROOT,
                               env=bench.environment(database), capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"bench.api_probe failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- The two clients --------------------------------------------------------------------------

def _http(token: str, base_url: str = "") -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)


async def _mcp_session(url: str, token: str, ids: list[int], calls: int) -> None:
    async with _http(token) as http, Client(streamable_http_client(f"{url}/mcp/", http_client=http)) as client:
        for index in range(calls):
            result = await client.call_tool(TOOL, {"settlement": ids[index % len(ids)]})
            if result.is_error:
                raise RuntimeError(f"{TOOL} failed: {result.structured_content}")


async def _rest_session(url: str, token: str, ids: list[int], calls: int) -> None:
    async with _http(token, url) as http:
        for index in range(calls):
            response = await http.get(f"/api/settlements/{ids[index % len(ids)]}/")
            if response.status_code != 200:
                raise RuntimeError(f"GET /api/settlements/ answered {response.status_code}: {response.text[:300]}")


async def _rate(session, url: str, token: str, ids: list[int], calls: int, sessions: int) -> float:
    """Calls/s of `sessions` concurrent sessions sharing `calls` calls. For MCP the handshake is
    inside the window; with `calls` per session it weighs little (and is reported on its own)."""
    share = calls // sessions
    started = time.perf_counter()
    await asyncio.gather(*(session(url, token, ids[index::sessions] or ids, share) for index in range(sessions)))
    return share * sessions / (time.perf_counter() - started)


def rate(side: str, url: str, token: str, ids: list[int], calls: int, sessions: int = 1) -> float:
    session = _mcp_session if side == "mcp" else _rest_session
    return asyncio.run(_rate(session, url, token, ids, calls, sessions))


async def _handshakes(url: str, token: str, settlement: int) -> dict[str, list[float]]:
    """Seconds to open a session (the SDK's handshake), and of the session's first call, which
    also carries the client's one-off fetch of the tool listing."""
    seconds: dict[str, list[float]] = {"open": [], "first_call": []}
    async with _http(token) as http:
        for _ in range(HANDSHAKES):
            started = time.perf_counter()
            async with Client(streamable_http_client(f"{url}/mcp/", http_client=http)) as client:
                opened = time.perf_counter()
                await client.call_tool(TOOL, {"settlement": settlement})
                seconds["open"].append(opened - started)
                seconds["first_call"].append(time.perf_counter() - opened)
    return seconds


def database_sessions(bench: Bench, database: str) -> int:
    """Sessions ever opened to `database` (read from another database, so reading adds none)."""
    return bench.query("postgres", "SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,))[0][0]


def connections_per_call(bench: Bench, database: str, side: str, url: str, token: str, ids: list[int]) -> float:
    """PostgreSQL connections opened per call: a server that keeps its connections opens none."""
    before = database_sessions(bench, database)
    rate(side, url, token, ids, CONNECTION_PROBE_CALLS)
    time.sleep(STATS_DELAY)
    return round((database_sessions(bench, database) - before) / CONNECTION_PROBE_CALLS, 2)


# --- The benchmark ----------------------------------------------------------------------------

def measure(bench: Bench, database: str, url: str, token: str, ids: list[int], calls: int) -> dict:
    for side in ("mcp", "rest"):
        rate(side, url, token, ids, WARMUP_CALLS)
    figures = {"mcp": [], "rest": [], "mcp_concurrent": [], "rest_concurrent": []}
    for _ in range(bench.runs):
        # Alternating the sides spreads any drift of the machine over both.
        for side in ("mcp", "rest"):
            figures[side].append(rate(side, url, token, ids, calls))
            figures[f"{side}_concurrent"].append(rate(side, url, token, ids, calls, SESSIONS))
    figures["handshake_s"] = asyncio.run(_handshakes(url, token, ids[0]))
    figures["connections_per_call"] = {side: connections_per_call(bench, database, side, url, token, ids)
                                       for side in ("mcp", "rest")}
    return figures


def as_measurement(figures: dict, extra: dict) -> Measurement:
    concurrent = {side: statistics.median(figures[f"{side}_concurrent"]) for side in ("mcp", "rest")}
    handshake_ms, first_call_ms = (statistics.median(figures["handshake_s"][part]) * 1000
                                   for part in ("open", "first_call"))
    one_session = statistics.median(figures["mcp"]) / statistics.median(figures["rest"])
    return Measurement(
        key="mcp_get_settlement", title=f"MCP {TOOL} tool calls (SDK client, streamable HTTP, one session)",
        unit="calls/s", values=figures["mcp"], baseline=figures["rest"],
        baseline_title="GET /api/settlements/<id>/ (same token, same uvicorn, keep-alive httpx2)",
        higher_is_better=True, target="reported (the issue sets no bound)", ratio_bound=None,
        extra={**extra, "server": f"uvicorn config.asgi, {WORKERS} workers", "ratio_one_session": one_session,
               "handshake_ms": round(handshake_ms, 2), "first_call_ms": round(first_call_ms, 2),
               "steady_call_ms": round(1000 / statistics.median(figures["mcp"]), 2), "sessions": SESSIONS,
               "mcp_concurrent_calls_per_s": round(concurrent["mcp"], 2),
               "rest_concurrent_calls_per_s": round(concurrent["rest"], 2),
               "ratio_concurrent": concurrent["mcp"] / concurrent["rest"],
               "db_connections_per_call": figures["connections_per_call"]})


def run(bench: Bench) -> list[Measurement]:
    calls = calls_per_run(bench)
    with bench.copy_of(bench.reconciled_db) as database:
        token = member_token(bench, database)
        ids = readable_settlements(bench, database)
        queries = queries_per_call(bench, database, token, ids[0])
        with serve(bench, database, kind="uvicorn", workers=WORKERS) as server:
            figures = measure(bench, database, server.url, token, ids, calls)
            rss_mb = server.rss_mb()
    measurement = as_measurement(figures, {"calls_per_run": calls, "settlements_cycled": len(ids),
                                           "queries_per_call": queries, "server_rss_mb": round(rss_mb, 1)})
    bench.log(f"mcp {TOOL}: {figures['mcp']} vs REST {figures['rest']} calls/s; ratio {measurement.ratio:.2f}")
    return [measurement]
