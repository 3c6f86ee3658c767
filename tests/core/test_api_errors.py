"""API answers outside the views (found by tests/reliability/test_fuzz_api.py): a URL no route
matches is a JSON 404 under /api/, and the schema documents the errors the framework gives."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_unrouted_api_url_is_a_json_404_with_a_code(client_for, superuser):
    for path in ("/api/projects/1/", "/api/tickets/not-a-key/", "/api/nowhere/"):
        response = client_for(superuser).get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", path
        assert response.json() == {"code": "not_found", "detail": "Not found."}


def test_a_page_outside_the_api_keeps_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_the_schema_documents_framework_errors(api_client):
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    tickets = paths["/api/tickets/"]
    assert {"200", "400", "401", "404"} <= set(tickets["get"]["responses"])  # filters, credentials, page
    assert {"201", "400", "401", "413"} <= set(tickets["post"]["responses"])
    accept = paths["/api/public/settlements/{token}/accept/"]["post"]["responses"]
    assert "400" in accept and "401" not in accept  # no login there, so no bad credentials
    assert {"429", "503"} <= set(accept) and {"429", "503"} <= set(tickets["get"]["responses"])
    assert "403" in paths["/api/users/"]["get"]["responses"]  # superusers only
    download = paths["/api/settlements/{id}/attachments/{attachment_id}/download/"]["get"]["responses"]["200"]
    assert {"application/pdf", "text/plain", "image/png"} <= set(download["content"])


@pytest.mark.parametrize("path", ["/api/projects/", "/dashboard/projects/"])
def test_a_lost_database_connection_is_a_503_with_a_code(client, superuser, monkeypatch, path):
    """A restart or failover while a request runs (tests/reliability/test_faults.py restarts a
    real server between requests) surfaces as OperationalError: 503, retry later, not a 500."""
    from django.db import OperationalError

    from tickets.models import Project

    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    client.force_login(superuser)
    monkeypatch.setattr(Project.objects, "visible_to", lost)
    response = client.get(path)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    if path.startswith("/api/"):
        assert response.json()["code"] == "database_unavailable"
    else:
        assert response["X-Error-Code"] == "database_unavailable"
