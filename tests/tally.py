"""What the reliability and security checks covered, printed at the end of `make test`.

Tests call `tally(kind, n)` as they check things; `tests/conftest.py` prints the totals and the
number of failed tests after the run. Kinds: see KINDS (an unknown kind is a programming error).
"""

from collections import Counter

KINDS = {
    "permission": "operation × subject checks",
    "race": "races run",
    "fault": "faults injected",
    "fuzz": "fuzz cases tried",
    "abuse": "abusive inputs tried",
}

_totals: Counter = Counter()


def tally(kind: str, n: int = 1) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown tally kind {kind!r}; add it to tests.tally.KINDS")
    _totals[kind] += n


def summary_lines(failed: int) -> list[str]:
    counts = ", ".join(f"{_totals[kind]} {label}" for kind, label in KINDS.items())
    return [f"Reliability and security: {counts}; {failed} failed"]
