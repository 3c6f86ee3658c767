"""The backup restore drill (issue 9): a pg_dump of a database with posted invoices and an
attachment restores into a scratch database whose schema, ledger and bucket objects check out;
a broken dump or a missing object fails the drill."""

import subprocess
from datetime import date
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from billing import invoicing
from settlements import services as settlement_services
from settlements.models import SettlementAttachment
from tests.billing.conftest import grant_billing, reconcile
from tests.billing.test_reconciliation_at_scale import clients_with_entries
from tests.factories import ProjectFactory, UserFactory, grant

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def dump_database(path) -> None:
    database = settings.DATABASES["default"]
    url = (f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
           f"{database['NAME']}")
    subprocess.run(["pg_dump", "-Fc", "-f", str(path), url], check=True)


@pytest.fixture
def backup(tmp_path):
    staff = grant_billing(UserFactory(username="bella"), "billing.manage", "billing.admin")
    clients_with_entries(2)
    reconcile()
    run = invoicing.run_build(actor=staff, period=date(2026, 10, 1), include_prior_periods=False).run
    invoicing.run_post(actor=staff, run=run)
    dump = tmp_path / "settlements.dump"
    dump_database(dump)
    return dump


def drill(*args) -> str:
    out = StringIO()
    call_command("restore_drill", *args, stdout=out)
    return out.getvalue()


def test_a_backup_restores_with_a_sound_ledger(backup):
    output = drill("--dump", str(backup))
    assert "ledger: ok — Ledger OK: 2 posted invoice(s)" in output
    assert "Restore drill passed." in output


def test_every_attachment_object_must_be_in_the_bucket_backup(tmp_path):
    owner = UserFactory()
    project = ProjectFactory(key="DRIL")
    grant(owner, project, "owner")
    settlement = settlement_services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                                       period_end=date(2026, 10, 31), projects=[project])
    SettlementAttachment.objects.create(settlement=settlement, file="settlements/drill/report.pdf", size=4,
                                        original_name="report.pdf", content_type="application/pdf")
    dump = tmp_path / "settlements.dump"
    dump_database(dump)
    bucket = tmp_path / "bucket"
    (bucket / "settlements" / "drill").mkdir(parents=True)
    with pytest.raises(CommandError, match="1 of 1 object"):
        drill("--dump", str(dump), "--bucket-dir", str(bucket))
    (bucket / "settlements" / "drill" / "report.pdf").write_bytes(b"%PDF")
    assert "attachments: ok — 1 object(s) present" in drill("--dump", str(dump), "--bucket-dir", str(bucket))


def test_a_broken_dump_fails_the_drill(tmp_path):
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP not really a dump")
    with pytest.raises(CommandError, match="pg_restore failed"):
        drill("--dump", str(broken))
