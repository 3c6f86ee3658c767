"""Settlement workflow: every allowed and refused transition with its timestamps, reverse rights,
concurrency of transitions (numbering under concurrency: tests/reliability/test_races.py)."""

from datetime import date

import pytest

from settlements import services
from settlements.choices import ALLOWED_SETTLEMENT_TRANSITIONS, SettlementStatus
from settlements.models import Settlement, SettlementEvent
from tests.factories import UserFactory, grant
from tests.helpers import race

pytestmark = pytest.mark.django_db
S = SettlementStatus


def _to(client, settlement, status):
    return client.post(f"/api/settlements/{settlement.pk}/transition/", {"status": status}, format="json")


def test_numbers_are_gapless_with_the_configured_prefix(owner, mnx, settings):
    made = [services.settlement_create(actor=owner, name=f"S{i}", period_start=date(2026, 1, 1),
                                       period_end=date(2026, 1, 31), projects=[mnx]) for i in range(3)]
    assert [s.display_number for s in made] == ["ROZ-1", "ROZ-2", "ROZ-3"]
    services.settlement_delete(actor=owner, settlement=made[2])
    settings.SETTLEMENT_NUMBER_PREFIX = "STL"
    other = services.settlement_create(actor=owner, name="x", period_start=date(2026, 1, 1),
                                       period_end=date(2026, 1, 31), projects=[mnx])
    assert other.display_number == "STL-1"
    settings.SETTLEMENT_NUMBER_PREFIX = "ROZ"
    again = services.settlement_create(actor=owner, name="x", period_start=date(2026, 1, 1),
                                       period_end=date(2026, 1, 31), projects=[mnx])
    assert again.display_number == "ROZ-4"  # the deleted ROZ-3 keeps its number


def test_full_forward_and_reverse_cycle_with_timestamps(client_for, owner, settlement):
    client = client_for(owner)
    sent = _to(client, settlement, "sent").json()
    assert sent["status"] == "sent" and sent["sent_at"] and sent["paid_at"] is None
    paid = _to(client, settlement, "paid").json()
    assert paid["status"] == "paid" and paid["sent_at"] == sent["sent_at"] and paid["paid_at"]
    back = _to(client, settlement, "sent").json()
    assert back["status"] == "sent" and back["sent_at"] == sent["sent_at"] and back["paid_at"] is None
    draft = _to(client, settlement, "draft").json()
    assert draft["status"] == "draft" and draft["sent_at"] is None and draft["paid_at"] is None
    kinds = list(SettlementEvent.objects.filter(settlement=settlement).values_list("kind", "after__status"))
    assert kinds == [("created", None), ("transitioned", "sent"), ("transitioned", "paid"),
                     ("transitioned", "sent"), ("transitioned", "draft")]


REFUSED = [(current, target) for current in S.values for target in S.values
           if target not in ALLOWED_SETTLEMENT_TRANSITIONS[current]]


@pytest.mark.parametrize("current,target", REFUSED)
def test_refused_transitions_are_409_with_allowed_targets(client_for, owner, settlement, current, target):
    client = client_for(owner)
    path = {"draft": [], "sent": ["sent"], "paid": ["sent", "paid"]}[current]
    for step in path:
        assert _to(client, settlement, step).status_code == 200
    before = Settlement.objects.get(pk=settlement.pk)
    response = _to(client, settlement, target)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["allowed"] == sorted(ALLOWED_SETTLEMENT_TRANSITIONS[current]) and body["status"] == current
    after = Settlement.objects.get(pk=settlement.pk)
    assert (after.status, after.sent_at, after.paid_at) == (before.status, before.sent_at, before.paid_at)


def test_unknown_status_is_400(client_for, owner, settlement):
    response = _to(client_for(owner), settlement, "archived")
    assert response.status_code == 400 and response.json()["errors"]["status"][0]["code"] == "invalid_choice"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_reading_roles_cannot_transition(client_for, mnx, acme, settlement, role):
    from rbac import services as rbac_services

    user = UserFactory(username="u")
    boss = UserFactory(username="boss", is_superuser=True)
    for project in (mnx, acme):
        rbac_services.role_create(actor=boss, project=project, slug="reader", name="Reader",
                                  permissions=["tickets:read", "settlements:read"])
        grant(user, project, "reader")
    response = _to(client_for(user), settlement, "sent")
    assert response.status_code == 403 and response.json()["code"] == "missing_permission"


def test_reverse_transitions_need_project_admin_in_every_project(client_for, owner, mnx, acme, settlement):
    from rbac import services as rbac_services

    writer = UserFactory(username="writer")
    boss = UserFactory(username="boss", is_superuser=True)
    for project in (mnx, acme):
        rbac_services.role_create(actor=boss, project=project, slug="biller", name="Biller",
                                  permissions=["tickets:read", "settlements:read", "settlements:write"])
        grant(writer, project, "biller")
    client = client_for(writer)
    assert _to(client, settlement, "sent").status_code == 200
    assert _to(client, settlement, "paid").status_code == 200
    response = _to(client, settlement, "sent")
    assert response.status_code == 403 and response.json()["code"] == "project_admin_required"
    grant(writer, mnx, "admin")  # admin in one project only is not enough
    response = _to(client, settlement, "sent")
    assert response.status_code == 403 and response.json()["projects"] == ["ACME"]
    grant(writer, acme, "admin")
    assert _to(client, settlement, "sent").status_code == 200
    assert _to(client, settlement, "draft").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_serialize_and_exactly_one_wins(owner, mnx):
    settlement = services.settlement_create(actor=owner, name="race", period_start=date(2026, 1, 1),
                                            period_end=date(2026, 1, 31), projects=[mnx])
    outcomes = race(lambda n: services.settlement_transition(actor=owner, settlement=settlement, status="sent"), 8)
    assert sorted(getattr(outcome, "code", "ok") for outcome in outcomes) == ["invalid_transition"] * 7 + ["ok"]
    assert SettlementEvent.objects.filter(settlement=settlement, kind="transitioned").count() == 1
