"""Helpers shared by tests of several apps: admin form bodies, thread races, query counts."""

import threading
from collections.abc import Callable

from django.db import connection


def admin_form_data(response) -> dict:
    """The POST body the rendered admin change form would send unchanged: the main form's fields
    and, for every inline, its management form (with the prefixes as rendered) and its forms."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms.append(inline.formset.management_form)
        forms.extend(inline.formset.forms)
    data = {}
    for form in forms:
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            data[bound.html_name] = "on" if value is True else value
    return data


def race(target: Callable[[int], object], threads: int) -> list:
    """Run `target(n)` in `threads` threads released at the same moment, each with its own
    database connection. Returns what each returned or the exception it raised, in thread order."""
    barrier = threading.Barrier(threads)
    outcomes: list = [None] * threads

    def run(n: int) -> None:
        try:
            barrier.wait()
            outcomes[n] = target(n)
        except Exception as exc:  # the caller asserts on every outcome
            outcomes[n] = exc
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes


def count_queries(call: Callable[[], object]) -> tuple[int, object]:
    """How many queries `call()` runs on the default connection, and what it returned."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = call()
    return len(captured), result


def assert_flat(measure: Callable[[], int], grow: Callable[[], object], *, ceiling: int) -> int:
    """The N+1 check of every list: `measure()` (a request counted by count_queries) runs the same
    number of queries before and after `grow()` adds rows, and no more than `ceiling` (so a list
    that is constant but needlessly expensive is noticed too). Returns the count."""
    few = measure()
    grow()
    many = measure()
    assert few == many, f"{few} queries with few rows, {many} with many: a query per row"
    assert many <= ceiling, f"{many} queries, more than the {ceiling} this list needs"
    return many
