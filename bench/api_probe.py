"""Queries per page of the API list endpoints, run in its own process on a benchmark database
(`python -m bench.api_probe '<json>'`, environment from `Bench.environment`); prints one JSON line.

Input: {"token": str, "endpoints": {name: [product path, baseline path]}, "page_sizes": [int, ...],
"compare_size": int, "sql": bool}. Per endpoint it reports the queries the product issues for one
page at each page size (after a warm-up request, so one-off work such as the token's
last-used stamp or lazy caches is not counted), and whether the product and the baseline view
return the same rows in the same order at `compare_size`.

With {"mode": "settlement", "token": str, "settlement": int} it counts instead the queries of one
GET /api/settlements/<id>/ and of one get_settlement MCP tool call (the tool function, plus the
token check every MCP HTTP request makes; config.mcp's lookup of the actor adds one more)."""

import json
import sys

import django


def _get(client, path: str, page_size: int):
    separator = "&" if "?" in path else "?"
    response = client.get(f"{path}{separator}page_size={page_size}")
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.content[:500]!r}")
    return response.json()


def _counted(client, path: str, page_size: int) -> tuple[dict, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        body = _get(client, path, page_size)
    return body, [query["sql"] for query in captured.captured_queries]


def probe_endpoint(product, baseline, product_path: str, baseline_path: str, page_sizes: list[int],
                   compare_size: int, with_sql: bool) -> dict:
    _get(product, product_path, 1)  # warm-up: token stamp, content types, first connection
    report: dict = {"queries": {}, "rows": {}}
    for size in page_sizes:
        body, statements = _counted(product, product_path, size)
        report["queries"][str(size)] = len(statements)
        report["rows"][str(size)] = len(body["results"])
        if with_sql:
            report.setdefault("sql", {})[str(size)] = statements
    counts = list(report["queries"].values())
    report["queries_constant"] = len(set(counts)) == 1
    product_rows = _get(product, product_path, compare_size)["results"]
    baseline_rows, baseline_statements = _counted(baseline, baseline_path, compare_size)
    report["baseline_queries"] = len(baseline_statements)
    report["same_rows"] = [row["id"] for row in product_rows] == [row["id"] for row in baseline_rows["results"]]
    report["compare_rows"] = len(product_rows)
    report["first_row"] = product_rows[0] if product_rows else None
    return report


def settlement_rows_complete(rows: list[dict]) -> bool:
    """Every row carries ticket/attachment counts and totals, and the page has real figures."""
    keys = {"ticket_count", "attachment_count", "totals"}
    shaped = all(keys <= row.keys() and {"minutes", "hours", "amounts"} <= row["totals"].keys() for row in rows)
    filled = any(row["ticket_count"] and row["totals"]["minutes"] and row["totals"]["amounts"] for row in rows)
    return bool(rows) and shaped and filled


def count_queries(call) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def settlement_queries(token: str, settlement: int) -> dict:
    from django.test import Client

    from config.mcp import load_tools
    from rbac.authentication import user_for_token

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="127.0.0.1")
    path = f"/api/settlements/{settlement}/"
    _get(client, path, 1)  # warm-up, as for the lists
    tool = load_tools()["get_settlement"].function
    actor, _token = user_for_token(token)
    return {"rest_queries": count_queries(lambda: _get(client, path, 1)),
            "tool_queries": count_queries(lambda: tool(actor=actor, settlement=settlement)),
            "token_check_queries": count_queries(lambda: user_for_token(token))}


def main(arguments: dict) -> dict:
    django.setup()
    if arguments.get("mode") == "settlement":
        return settlement_queries(arguments["token"], arguments["settlement"])
    from django.test import Client

    host = {"SERVER_NAME": "127.0.0.1"}
    product = Client(HTTP_AUTHORIZATION=f"Bearer {arguments['token']}", **host)
    baseline = Client(**host)
    report = {}
    for name, (product_path, baseline_path) in arguments["endpoints"].items():
        report[name] = probe_endpoint(product, baseline, product_path, baseline_path, arguments["page_sizes"],
                                      arguments["compare_size"], arguments.get("sql", False))
    if "settlements" in arguments["endpoints"]:
        rows = _get(product, arguments["endpoints"]["settlements"][0], arguments["compare_size"])["results"]
        report["settlements"]["counts_and_totals"] = settlement_rows_complete(rows)
    return report


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1])), default=str))
