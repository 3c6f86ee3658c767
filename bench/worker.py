"""One measured product operation in its own process: `python -m bench.worker CASE [JSON args]`
with DATABASE_URL naming the database copy to work on. Prints one JSON line: seconds (of the
operation alone, not Django's start-up), peak RSS and its growth over the operation, and what
the operation reported. A process per run keeps every run's memory and caches cold alike."""

import json
import os
import resource
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """The largest RSS of this process or of any process it forked (parallel reconciliation)."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def main() -> None:
    import django

    django.setup()
    from . import operations

    case, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    operation = operations.OPERATIONS[case]
    prepared = operation.prepare(**args) if hasattr(operation, "prepare") else args
    before = _rss_mb()
    started = time.perf_counter()
    result = operation(**prepared)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rss_before_mb": round(before, 1), "peak_rss_mb": round(_peak_mb(), 1),
                      "rss_growth_mb": round(max(_peak_mb() - before, 0), 1), "result": result}, default=str))


if __name__ == "__main__":
    main()
