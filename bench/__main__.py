"""`python -m bench` (`make bench`): generate the dataset of each scale, run the benchmarks, and
write docs/benchmarks/scale-*.json and docs/BENCHMARKS.md. PostgreSQL is required."""

import argparse
import shlex
import sys
import time
from pathlib import Path

from . import pg, report
from .runner import Bench

SUITES = ("billing", "api", "attachments", "mcp")


def _suite(name: str):
    from . import api, attachments, billing, mcp_bench

    return {"billing": billing, "api": api, "attachments": attachments, "mcp": mcp_bench}[name]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", type=float, action="append",
                        help="Dataset size relative to the full one (1 = 1,000,000 time entries); repeatable. "
                             "Default: 1.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per figure; the median is reported. Default: 3.")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the generated dataset. Default: 1.")
    parser.add_argument("--only", default=",".join(SUITES), help=f"Comma-separated subset of {', '.join(SUITES)}.")
    parser.add_argument("--http-seconds", type=float, help="Length of each load-generator measurement.")
    parser.add_argument("--attachment-mb", type=int, help="Size of the streamed attachment (default 200).")
    parser.add_argument("--drop-datasets", action="store_true", help="Drop the template databases afterwards.")
    parser.add_argument("--docs", type=Path, default=report.DOCS,
                        help="Folder of BENCHMARKS.md and benchmarks/scale-*.json (default: docs/).")
    options = parser.parse_args(argv)
    options.scale = options.scale or [1.0]
    options.only = [name.strip() for name in options.only.split(",") if name.strip()]
    if unknown := set(options.only) - set(SUITES):
        parser.error(f"unknown suite(s): {', '.join(sorted(unknown))}")
    if options.runs < 1 or any(scale <= 0 or scale > 10 for scale in options.scale):
        parser.error("--runs must be at least 1 and --scale in (0, 10]")
    return options


def run_scale(options: argparse.Namespace, scale: float, command: str) -> None:
    started = time.monotonic()
    bench = Bench(scale=scale, seed=options.seed, runs=options.runs, http_seconds=options.http_seconds,
                  attachment_mb=options.attachment_mb, log=lambda text: print(f"[scale {scale:g}] {text}", flush=True))
    bench.ensure_source()
    for name in options.only:
        bench.log(f"running {name}")
        if name != "billing":
            bench.ensure_reconciled()
        measurements = _suite(name).run(bench)
        for measurement in measurements:
            bench.log(f"{measurement.title}: {measurement.median:.4g} {measurement.unit}, ratio "
                      f"{measurement.ratio if measurement.ratio is None else round(measurement.ratio, 3)}, "
                      f"met: {measurement.met}")
        # Saved after every suite: a later failure does not lose what was measured.
        path = report.save(scale, command, bench.sizes.as_dict(), options.runs, measurements, docs=options.docs)
    bench.log(f"results in {path} after {time.monotonic() - started:.0f} s")
    if options.drop_datasets:
        for name in (bench.source_db, bench.reconciled_db):
            pg.drop(name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse(argv)
    pg.require_server()
    command = "make bench" + (f" BENCH_ARGS={shlex.quote(' '.join(argv))}" if argv else "")
    for scale in options.scale:
        run_scale(options, scale, command)
    print(f"wrote {report.write(options.docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
