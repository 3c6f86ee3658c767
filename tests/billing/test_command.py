"""`manage.py recalculate_billing`: scopes from the options, input errors as CommandError (a
non-zero exit), a progress bar on stderr, the run's counts on stdout, and --async through Celery."""

import io
import re
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing.choices import RunStatus, RunTrigger, SourceType
from billing.management.commands.recalculate_billing import Command, ProgressBar
from billing.models import BillingItem, BillingSettings, ReconciliationRun
from billing.tasks import reconcile_billing_task
from tests.factories import ClientFactory, ContractFactory, ProjectFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Two clients with a contract each and an hour of work in October, plus an hour in a project
    no contract covers."""
    made = {}
    for name in ("Acme", "Nordic"):
        project = ProjectFactory(key=name.upper())
        client = ClientFactory(name=name)
        made[name] = ContractFactory(client=client, name=f"{name} support", projects=[project])
        TimeEntryFactory(ticket__project=project, minutes=60)
        TimeEntryFactory(ticket__project=project, minutes=30, work_date=date(2026, 9, 3))
    made["loose"] = TimeEntryFactory(ticket__project=ProjectFactory(key="LOOSE"), minutes=45)
    return made


def run_command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("recalculate_billing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_without_options_everything_is_recalculated_with_progress_and_counts(world):
    out, err = run_command()
    run = ReconciliationRun.objects.get()
    assert (run.trigger, run.actor, run.scope, run.status) == (RunTrigger.MANUAL, None, {}, RunStatus.SUCCEEDED)
    assert BillingItem.objects.filter(source_type=SourceType.TICKET_TIME).count() == 4
    assert err.splitlines() == ["[##########----------] 1/2 clients", "[####################] 2/2 clients"]
    assert (f"Reconciliation run {run.pk} (everything): Succeeded: created 4, superseded 0, unchanged 0, "
            "unmatched 1, skipped (locked) 0") in out
    assert "Clients 2/2, items compared 4" in out
    assert f"1 unmatched source(s): see /admin/billing/reconciliationrun/{run.pk}/change/" in out

    out, _err = run_command()  # idempotent
    assert "created 0, superseded 0, unchanged 4" in out


def test_client_contract_and_period_narrow_the_scope(world):
    acme, nordic = world["Acme"], world["Nordic"]
    out, err = run_command("--client", str(acme.client_id), "--period", "2026-10")
    run = ReconciliationRun.objects.latest("pk")
    assert run.scope == {"client_id": acme.client_id, "period": "2026-10"}
    assert err.splitlines() == ["[####################] 1/1 clients"]
    assert "created 1," in out
    assert set(BillingItem.objects.values_list("client_id", "period_month")) == {(acme.client_id, date(2026, 10, 1))}

    out, _err = run_command("--contract", str(nordic.pk))
    assert ReconciliationRun.objects.latest("pk").scope == {"contract_id": nordic.pk}
    assert "created 2," in out
    out, _err = run_command("--client", str(nordic.client_id), "--contract", str(nordic.pk), "--period", "2026-09")
    assert ReconciliationRun.objects.latest("pk").scope == {"client_id": nordic.client_id,
                                                            "contract_id": nordic.pk, "period": "2026-09"}
    assert "created 0, superseded 0, unchanged 1" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2026-13"], "--period: '2026-13' is not a period; use YYYY-MM"),
    (["--period", "October"], "--period: 'October' is not a period"),
    (["--client", "999999"], "No client with id 999999."),
    (["--contract", "999999"], "No contract with id 999999."),
    (["--client", "abc"], "argument --client: invalid int value: 'abc'"),
])
def test_bad_input_is_a_command_error(world, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run_command(*args)
    assert not ReconciliationRun.objects.exists()


def test_a_contract_of_another_client_is_refused(world):
    acme, nordic = world["Acme"], world["Nordic"]
    with pytest.raises(CommandError, match=f"Contract {nordic.pk} belongs to client {nordic.client_id}, not to "
                                           f"client {acme.client_id}"):
        run_command("--client", str(acme.client_id), "--contract", str(nordic.pk))


@pytest.mark.parametrize("extra", [[], ["--async"]])
def test_switched_off_manual_recalculation_is_refused(world, extra):
    BillingSettings.objects.create(pk=1, manual_recalculation=False)
    with pytest.raises(CommandError, match=r"switched off .*\(manual_recalculation_disabled\)"):
        run_command(*extra)
    assert not ReconciliationRun.objects.exists()


def test_bad_input_exits_non_zero_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        Command().run_from_argv(["manage.py", "recalculate_billing", "--period", "2026-1"])
    assert exit_info.value.code != 0
    assert "'2026-1' is not a period" in capsys.readouterr().err


def test_async_queues_the_run_for_celery_and_prints_the_task_id(world):
    out, err = run_command("--async", "--client", str(world["Acme"].client_id))
    run = ReconciliationRun.objects.get()
    assert run.task_id and run.trigger == RunTrigger.MANUAL and run.actor is None
    assert f"Queued reconciliation run {run.pk} (client_id {world['Acme'].client_id}) as task {run.task_id}." in out
    assert run.status == RunStatus.SUCCEEDED  # tests run Celery eagerly
    assert "created 2," in out and err == ""


def test_async_with_the_broker_down_runs_in_this_process(world, monkeypatch):
    def unreachable(*args, **kwargs):
        raise BrokerUnavailable("connection refused")

    monkeypatch.setattr(reconcile_billing_task, "apply_async", unreachable)
    out, err = run_command("--async")
    assert "broker cannot be reached" in err and "2/2 clients" in err
    assert ReconciliationRun.objects.get().status == RunStatus.SUCCEEDED
    assert "created 4," in out


def test_async_reports_a_run_still_queued(world, monkeypatch):
    monkeypatch.setattr(reconcile_billing_task, "apply_async", lambda *args, **kwargs: None)
    out, _err = run_command("--async")
    run = ReconciliationRun.objects.get()
    assert f"Status: Queued; follow it at /admin/billing/reconciliationrun/{run.pk}/change/" in out


def test_a_failing_run_is_a_command_error_and_recorded(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("billing.reconciliation.reconcile_client", broken)
    with pytest.raises(CommandError, match=r"Recalculation failed: .*client \d+: RuntimeError: database went away"):
        run_command()
    assert ReconciliationRun.objects.get().status == RunStatus.FAILED


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = ProgressBar(OutputWrapper(stream))
    for done in range(1, 4):
        bar(done, 3)
    assert stream.getvalue() == ("\r[######--------------] 1/3 clients\r[#############-------] 2/3 clients"
                                 "\r[####################] 3/3 clients\n")
