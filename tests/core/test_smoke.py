"""The pages a first look opens: home, health, admin login, API docs and schema."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/health/", "/admin/login/", "/api/docs/"])
def test_public_pages_render(client, url):
    assert client.get(url).status_code == 200


def test_schema_is_valid_openapi(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/tickets/{key}/" in text and "/api/projects/{project_key}/members/" in text


def test_schema_endpoint_requires_nothing_but_serves_openapi(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_demo_data_loads_once():
    from tickets.demo import load_demo_data
    from tickets.models import Project, Ticket

    assert load_demo_data(admin_password="pw-admin-123") is True
    counts = (Project.objects.count(), Ticket.objects.count())
    assert counts[0] == 4 and counts[1] == 32
    assert load_demo_data(admin_password="pw-admin-123") is False
    assert (Project.objects.count(), Ticket.objects.count()) == counts


def test_settlement_demo_gives_a_draft_and_a_shared_sent_settlement(client):
    from settlements.demo import load_settlements_demo
    from settlements.models import Settlement
    from tickets.demo import load_demo_data

    assert load_settlements_demo() is None  # nothing to build on yet
    load_demo_data(admin_password="pw-admin-123")
    share_path = load_settlements_demo()
    rows = [(s.status, s.projects.count()) for s in Settlement.objects.order_by("number")]
    assert rows == [("draft", 2), ("sent", 1)]
    assert client.get(share_path).status_code == 200
    assert load_settlements_demo() is None
