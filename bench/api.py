"""Benchmark 6, the API: the ticket list, the settlement list (with counts and totals) and the
billing item list, first page of 50 (the API's default page size, sent explicitly), as bench-member
so the permission chokepoint is exercised.

Two figures per endpoint: the queries one page costs, counted in a separate process at two page
sizes (they must be equal: no query per row), and requests/s under wrk (or bench.loadgen's
Python equivalent) against gunicorn, as a ratio to bench/views.py's minimal view that returns the
same page of rows from one values() query. Target: at least 0.5 of that baseline."""

import json
import subprocess
import sys
import urllib.request

from .loadgen import CONNECTIONS
from .loadgen import run as load
from .runner import ROOT, Bench, Measurement
from .server import serve

PAGE_SIZE = 50
PROBE_PAGE_SIZES = (10, 100)
RATIO_BOUND = 0.5
# Seconds of load per measurement; a bench object may say otherwise (`http_seconds`). Small
# scales are the quick development runs, so they get shorter windows.
SECONDS = 5
QUICK_SECONDS = 2
WARMUP_SECONDS = 1

# name: (product path, baseline path)
ENDPOINTS = {
    "tickets": ("/api/tickets/", "/bench/tickets/"),
    "settlements": ("/api/settlements/", "/bench/settlements/"),
    "billing_items": ("/api/billing/items/", "/bench/billing/items/"),
}


def seconds_per_measurement(bench: Bench) -> float:
    return bench.http_seconds or (QUICK_SECONDS if bench.scale < 0.1 else SECONDS)


def member_token(bench: Bench, database: str) -> str:
    return bench.query(database, "SELECT value FROM bench_secret WHERE name = 'token:bench-member'")[0][0]


def probe(bench: Bench, database: str, token: str, endpoints: dict, **options) -> dict:
    """Queries per page and row checks, from bench.api_probe in its own Django process."""
    arguments = {"token": token, "endpoints": endpoints, "page_sizes": list(PROBE_PAGE_SIZES),
                 "compare_size": PAGE_SIZE, **options}
    completed = subprocess.run([sys.executable, "-m", "bench.api_probe", json.dumps(arguments)], cwd=ROOT,
                               env=bench.environment(database), capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"bench.api_probe failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def rows_on_page(url: str, headers: dict) -> int:
    """One request before the load: wrk would not tell a redirect or an HTML page from a success."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
        if response.status != 200 or response.headers.get_content_type() != "application/json":
            raise RuntimeError(f"{url} answered {response.status} {response.headers.get_content_type()}")
        return len(json.load(response)["results"])


def alternate(bench: Bench, product: tuple, baseline: tuple, seconds: float) -> dict:
    """req/s of each side per run, the side taking turns so any drift of the machine hits both."""
    figures: dict = {"product": [], "baseline": [], "failed": 0}
    for side in (product, baseline):
        load(*side, WARMUP_SECONDS)  # every worker thread opens its connection, caches fill
    for _ in range(bench.runs):
        for name, side in (("product", product), ("baseline", baseline)):
            result = load(*side, seconds)
            figures[name].append(result.requests_per_s)
            figures["failed"] += result.failed
            figures["generator"] = result.generator
    return figures


def measure_endpoint(bench: Bench, base_url: str, token: str, name: str, probed: dict, seconds: float) -> Measurement:
    product_path, baseline_path = ENDPOINTS[name]
    product = (f"{base_url}{product_path}?page_size={PAGE_SIZE}", {"Authorization": f"Bearer {token}"})
    baseline = (f"{base_url}{baseline_path}?page_size={PAGE_SIZE}", {})
    rows, baseline_rows = rows_on_page(*product), rows_on_page(*baseline)
    figures = alternate(bench, product, baseline, seconds)
    checks = {"queries_constant": probed["queries_constant"], "same_rows_as_baseline": probed["same_rows"],
              "same_row_count": rows == baseline_rows, "all_2xx": figures["failed"] == 0}
    if name == "settlements":
        checks["counts_and_totals"] = probed["counts_and_totals"]
    bench.log(f"api {name}: {figures['product']} vs {figures['baseline']} req/s; queries {probed['queries']}")
    return Measurement(
        key=f"api_{name}", title=f"API GET {product_path} (page of {PAGE_SIZE}, bench-member)", unit="req/s",
        values=figures["product"], baseline=figures["baseline"],
        baseline_title=f"one values() query, JsonResponse ({baseline_path})", higher_is_better=True,
        target=f"≥ {RATIO_BOUND} × baseline; queries per page constant", ratio_bound=RATIO_BOUND,
        extra={"queries_per_page": probed["queries"], "baseline_queries": probed["baseline_queries"],
               "page_size": PAGE_SIZE, "rows": rows, "generator": figures["generator"], "connections": CONNECTIONS,
               "seconds": seconds, "failed_requests": figures["failed"], "checks": checks})


def run(bench: Bench) -> list[Measurement]:
    seconds = seconds_per_measurement(bench)
    with bench.copy_of(bench.reconciled_db) as database:
        token = member_token(bench, database)
        probed = probe(bench, database, token, ENDPOINTS)
        with serve(bench, database, kind="gunicorn", workers=2) as server:
            return [measure_endpoint(bench, server.url, token, name, probed[name], seconds) for name in ENDPOINTS]
