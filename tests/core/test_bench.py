"""The benchmark harness end to end at a tiny scale, so `make bench` cannot rot between the runs
that produce docs/BENCHMARKS.md: it generates a dataset, runs the billing benchmarks against their
SQL floors, checks the product wrote the floor's rows, writes the report, and leaves no database
behind. It asserts no timings (figures belong in BENCHMARKS.md, not in tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pg

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_make_bench_runs_the_billing_benchmarks_at_a_tiny_scale(tmp_path):
    env = {**os.environ, "BENCH_DATABASE_URL": pg.maintenance_url()}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "0.002", "--runs", "1", "--only", "billing", "--seed", "7",
         "--docs", str(tmp_path), "--drop-datasets"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = {entry["key"]: entry for entry in json.loads((tmp_path / "benchmarks" / "scale-0_002.json")
                                                             .read_text())["results"]}
    assert list(results) == ["reconcile_full", "reconcile_rerun", "reconcile_incremental", "build_drafts",
                             "post_drafts"]
    checks = {key: entry["extra"].get("checks", {}) for key, entry in results.items()}
    assert checks["reconcile_full"]["same_rows_as_floor"] and checks["reconcile_full"]["peak_rss_within_512mb"]
    assert checks["reconcile_rerun"] == {"zero_item_rows_written": True}
    assert checks["reconcile_incremental"] == {"every_request_done": True}
    assert checks["build_drafts"] == {"same_rows_as_floor": True}
    assert all(entry["baseline"] for entry in results.values())
    assert "Full reconciliation of everything" in (tmp_path / "BENCHMARKS.md").read_text()
    with pg.connect(autocommit=True) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%\\_r7%'").fetchall()
    assert left == []
