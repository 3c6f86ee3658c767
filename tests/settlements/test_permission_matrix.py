"""The REST permission matrix for every settlement endpoint: roles × own/foreign project × action.
Invisible settlements are 404 and never listed."""

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from settlements import services
from settlements.models import Settlement, SettlementAttachment, SettlementEvent, SettlementShareLink
from tests.factories import ProjectFactory, TicketFactory, UserFactory, grant, matrix_projects
from tests.permission_matrix import DENIED, HIDDEN, OK, UNAUTHENTICATED, expected_settlement, settlement_cases

pytestmark = pytest.mark.django_db

STATUS = {
    "retrieve": {OK: 200, HIDDEN: 404}, "search": {OK: 200, HIDDEN: 404}, "events": {OK: 200, HIDDEN: 404},
    "create": {OK: 201, DENIED: 403, HIDDEN: 400}, "update": {OK: 200, DENIED: 403, HIDDEN: 404},
    "delete": {OK: 204, DENIED: 403, HIDDEN: 404}, "transition": {OK: 200, DENIED: 403, HIDDEN: 404},
    "link": {OK: 201, DENIED: 403, HIDDEN: 404}, "unlink": {OK: 204, DENIED: 403, HIDDEN: 404},
    "attachments": {OK: 200, HIDDEN: 404}, "download": {OK: 200, HIDDEN: 404}, "share_links": {OK: 200, HIDDEN: 404},
    "upload": {OK: 201, DENIED: 403, HIDDEN: 404}, "attachment_update": {OK: 200, DENIED: 403, HIDDEN: 404},
    "attachment_delete": {OK: 204, DENIED: 403, HIDDEN: 404}, "share": {OK: 201, DENIED: 403, HIDDEN: 404},
    "share_revoke": {OK: 204, DENIED: 403, HIDDEN: 404},
}
PDF = b"%PDF-1.4\nmatrix"


def build_settlement_world(role, own):
    actor, home, away, keeper = matrix_projects(role)
    project = home if own else away
    settlement = services.settlement_create(actor=keeper, name="S", period_start=date(2026, 10, 1),
                                            period_end=date(2026, 10, 31), projects=[project])
    linked, free = TicketFactory(project=project), TicketFactory(project=project)
    services.settlement_link_ticket(actor=keeper, settlement=settlement, ticket=linked)
    services.attachment_upload(actor=keeper, settlement=settlement, uploaded=SimpleUploadedFile("a.pdf", PDF))
    # Share links need a sent settlement: a second one, with a link to revoke.
    sent = services.settlement_create(actor=keeper, name="Sent", period_start=date(2026, 9, 1),
                                      period_end=date(2026, 9, 30), projects=[project])
    services.settlement_transition(actor=keeper, settlement=sent, status="sent")
    services.share_link_create(actor=keeper, settlement=sent)
    return actor, project, settlement, linked, free


def _request(client, action, project, settlement, linked, free):
    base = f"/api/settlements/{settlement.pk}/"
    attachment = settlement.attachments.get()
    sent = Settlement.objects.get(name="Sent")
    shared = f"/api/settlements/{sent.pk}/share-links/"
    return {
        "attachments": lambda: client.get(f"{base}attachments/"),
        "download": lambda: client.get(f"{base}attachments/{attachment.pk}/download/"),
        "upload": lambda: client.post(f"{base}attachments/", {"file": SimpleUploadedFile("b.pdf", PDF)},
                                      format="multipart"),
        "attachment_update": lambda: client.patch(f"{base}attachments/{attachment.pk}/", {"state": "signed"},
                                                  format="json"),
        "attachment_delete": lambda: client.delete(f"{base}attachments/{attachment.pk}/"),
        "share_links": lambda: client.get(shared),
        "share": lambda: client.post(shared, {}, format="json"),
        "share_revoke": lambda: client.delete(f"{shared}{sent.share_links.get().pk}/"),
        "retrieve": lambda: client.get(base),
        "search": lambda: client.get(f"{base}search-tickets/", {"q": ""}),
        "events": lambda: client.get(f"{base}events/"),
        "create": lambda: client.post("/api/settlements/", {"name": "New", "period_start": "2026-11-01",
                                                            "period_end": "2026-11-30", "projects": [project.key]},
                                      format="json"),
        "update": lambda: client.patch(base, {"name": "Renamed"}, format="json"),
        "delete": lambda: client.delete(base),
        "transition": lambda: client.post(f"{base}transition/", {"status": "sent"}, format="json"),
        "link": lambda: client.post(f"{base}tickets/", {"ticket": free.key}, format="json"),
        "unlink": lambda: client.delete(f"{base}tickets/{linked.key}/"),
    }[action]()


def settlement_state():
    return (list(Settlement.objects.values_list("pk", "name", "status", "is_active")),
            SettlementEvent.objects.count(), list(SettlementAttachment.objects.values_list("pk", "state")),
            list(SettlementShareLink.objects.values_list("pk", "revoked_at")))


@pytest.mark.parametrize("case", settlement_cases(), ids=lambda c: f"{c[0]}-{c[1]}-{'own' if c[2] else 'foreign'}")
def test_settlement_permission_matrix(case, client_for):
    action, role, own = case
    outcome = expected_settlement(action, role, own=own)
    actor, project, settlement, linked, free = build_settlement_world(role, own)
    client = client_for(actor)
    if action == "list":
        response = client.get("/api/settlements/")
        if outcome == UNAUTHENTICATED:
            assert response.status_code == 401
            return
        ids = [row["id"] for row in response.json()["results"]]
        assert (settlement.pk in ids) is (outcome == OK)
        return
    before = settlement_state()
    response = _request(client, action, project, settlement, linked, free)
    if outcome == UNAUTHENTICATED:
        assert response.status_code == 401
    else:
        assert response.status_code == STATUS[action][outcome], response.content
    if outcome != OK:
        assert settlement_state() == before, "a refused request wrote something"
        if outcome == HIDDEN and action == "create":
            assert response.json()["code"] == "does_not_exist"


def test_settlement_list_has_constant_queries(client_for, django_assert_max_num_queries):
    owner = UserFactory(username="o")
    projects = [ProjectFactory(key=key) for key in ("AAA", "BBB", "CCC")]
    for project in projects:
        grant(owner, project, "owner")
    for n in range(12):
        settlement = services.settlement_create(actor=owner, name=f"S{n}", period_start=date(2026, n % 12 + 1, 1),
                                                period_end=date(2026, n % 12 + 1, 28), projects=projects)
        for project in projects:
            services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=TicketFactory(project=project))
    client = client_for(owner)
    for size in (1, 12):
        with django_assert_max_num_queries(6):
            rows = client.get("/api/settlements/", {"page_size": size}).json()["results"]
        assert len(rows) == size and rows[0]["ticket_count"] == 3 and rows[0]["projects"] == ["AAA", "BBB", "CCC"]
