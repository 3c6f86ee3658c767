"""The product operations the benchmarks time, each called by `bench.worker` in a fresh process.
An operation may have a `prepare` step (not timed) that returns the keyword arguments of the
timed call."""

import random
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction

BENCH_ADMIN = "bench-admin"
BENCH_MEMBER = "bench-member"
MEMBER_PROJECTS = 100


def _admin():
    return get_user_model().objects.get(username=BENCH_ADMIN)


def _store_secret(name: str, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_secret (name text PRIMARY KEY, value text NOT NULL)")
        cursor.execute("INSERT INTO bench_secret VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET value = "
                       "EXCLUDED.value", [name, value])


@transaction.atomic
def prepare_dataset() -> dict:
    """Users the HTTP benchmarks act as: a superuser, and a member administering 100 projects
    with billing:view, each with an API token kept in the bench_secret table."""
    from rbac.services import api_token_create, ensure_builtin_roles, membership_set, user_set_global_permissions
    from tickets.models import Project

    ensure_builtin_roles()
    users = get_user_model().objects
    admin = users.create_superuser(BENCH_ADMIN, "bench-admin@example.com", "bench-password")
    member = users.create_user(BENCH_MEMBER, "bench-member@example.com", "bench-password", is_staff=True)
    for project in Project.objects.order_by("pk")[:MEMBER_PROJECTS]:
        membership_set(actor=admin, project=project, user=member, role_slug="admin", check_permission=False)
    user_set_global_permissions(actor=admin, user=member, permissions=["billing.view"])
    for user in (admin, member):
        _store_secret(f"token:{user.username}", api_token_create(actor=admin, user=user, name="bench")[1])
    return {"member_projects": member.memberships.count()}


def reconcile_all(workers: int = 1) -> dict:
    from billing.choices import RunTrigger
    from billing.reconciliation import Scope, reconcile_now

    run = reconcile_now(Scope(), trigger=RunTrigger.MANUAL, workers=workers)
    return {"status": run.status, "clients": run.total, "created": run.created, "superseded": run.superseded,
            "unchanged": run.unchanged, "unmatched": run.unmatched, "skipped_locked": run.skipped_locked}


def _edit_time_entries(edits: int, seed: int) -> list[int]:
    """Change the minutes and description of `edits` random billable entries the way an edit
    through the API does, leaving one reconciliation request per entry (not timed)."""
    from billing.models import ReconciliationRequest
    from billing.reconciliation import Scope
    from tickets.models import TimeEntry

    ids = list(TimeEntry.objects.filter(billable=True).order_by("pk").values_list("pk", flat=True))
    chosen = sorted(random.Random(seed).sample(ids, min(edits, len(ids))))
    with transaction.atomic():
        entries = list(TimeEntry.objects.filter(pk__in=chosen))
        for entry in entries:
            entry.minutes = entry.minutes + 15 if entry.minutes <= 465 else entry.minutes - 15
            entry.description = f"{entry.description} (edited)".strip()[:200]
        TimeEntry.objects.bulk_update(entries, ["minutes", "description"], batch_size=1000)
        ReconciliationRequest.objects.bulk_create(
            [ReconciliationRequest(scope=Scope(record_kind="time_entry", record_id=pk).as_dict()) for pk in chosen])
    return chosen


def incremental(edits: int) -> dict:
    from billing import triggers
    from billing.models import ReconciliationRequest

    done = triggers.drain(older_than=timedelta(0))
    return {"edits": edits, "requests_done": done, "requests_left": ReconciliationRequest.objects.count()}


incremental.prepare = lambda edits, seed: {"edits": len(_edit_time_entries(edits, seed))}


def build(period: str, include_prior_periods: bool) -> dict:
    from billing.invoicing import run_build

    result = run_build(actor=_admin(), period=date.fromisoformat(period), include_prior_periods=include_prior_periods)
    return {"run": result.run.pk, "invoices": len(result.invoices),
            "items": sum(entry["items"] for entry in result.invoices), "skipped": len(result.skipped)}


def post(run: int, invoices: int, items: int, skipped: int) -> dict:
    from billing.invoicing import run_post
    from billing.models import BillingRun

    posted = run_post(actor=_admin(), run=BillingRun.objects.get(pk=run))
    return {"invoices": len(posted), "items": items, "first": posted[0].number, "last": posted[-1].number}


post.prepare = lambda period, include_prior_periods: build(period, include_prior_periods)

OPERATIONS = {"prepare_dataset": prepare_dataset, "reconcile_all": reconcile_all, "incremental": incremental,
              "build": build, "post": post}
