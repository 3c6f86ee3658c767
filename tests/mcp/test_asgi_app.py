"""config.asgi beside the MCP endpoint: Django's own requests keep the WSGI behaviour that matters,
streaming downloads and early refusal of oversized uploads (a real uvicorn, PostgreSQL)."""

import os
import warnings
from datetime import date

import httpx2
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from settlements import services
from settlements.api.downloads import attachment_response
from settlements.models import SettlementAttachment
from tests.factories import ProjectFactory, UserFactory, grant
from tests.mcp.conftest import token_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300 * 1024)


@pytest.fixture
def draft():
    owner = UserFactory(username="olga")
    project = ProjectFactory(key="MNX")
    grant(owner, project, "owner")
    settlement = services.settlement_create(actor=owner, name="S", period_start=date(2026, 10, 1),
                                            period_end=date(2026, 10, 31), projects=[project])
    return owner, settlement, {"Authorization": f"Bearer {token_for(owner)}"}


def test_a_download_over_asgi_streams_the_exact_bytes(asgi_url, draft):
    owner, settlement, auth = draft
    attachment = services.attachment_upload(actor=owner, settlement=settlement,
                                            uploaded=SimpleUploadedFile("scan.png", PNG))
    url = f"{asgi_url}/api/settlements/{settlement.pk}/attachments/{attachment.pk}/download/"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = httpx2.get(url, headers=auth)
    assert response.status_code == 200 and response.content == PNG
    assert response.headers["x-content-type-options"] == "nosniff"
    # Django warns when it must read a synchronous iterator whole before sending it under ASGI.
    assert not [warning for warning in caught if "synchronous iterators" in str(warning.message)]
    assert attachment_response(attachment, asgi=True).is_async
    assert not attachment_response(attachment).is_async


def test_an_oversized_upload_is_refused_before_django_reads_it(asgi_url, draft, settings):
    _, settlement, auth = draft
    settings.SETTLEMENT_ATTACHMENT_MAX_BYTES = 100 * 1024
    url = f"{asgi_url}/api/settlements/{settlement.pk}/attachments/"
    declared = httpx2.post(url, files={"file": ("scan.png", PNG)}, headers=auth)
    assert declared.status_code == 413 and declared.json()["code"] == "file_too_large"

    def chunks():
        for start in range(0, len(PNG), 16 * 1024):
            yield PNG[start:start + 16 * 1024]

    streamed = httpx2.post(url, content=chunks(), headers={**auth, "Content-Type": "image/png"})
    assert streamed.status_code == 413 and streamed.json()["code"] == "file_too_large"
    assert not SettlementAttachment.objects.exists()
    small = httpx2.post(url, files={"file": ("small.png", PNG[:50 * 1024])}, headers=auth)
    assert small.status_code == 201, small.text


def test_failed_mcp_tokens_are_throttled_like_the_api(asgi_url, settings):
    """The MCP SDK checks tokens itself; config.asgi counts its 401s per client address, so
    guessing tokens at /mcp/ is throttled with the REST API's limit and answer."""
    from django.core.cache import cache

    from core.throttling import api_token_failures
    from tests.tally import tally

    settings.BRUTE_FORCE_LIMITS = {**settings.BRUTE_FORCE_LIMITS, "api_token": {"failures": 3, "window": 3600}}
    counter = api_token_failures._window("127.0.0.1")[0]  # every request of this test comes from there
    cache.delete(counter)
    owner = UserFactory(username="mona")
    try:
        def call(token):
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
            return httpx2.post(f"{asgi_url}/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                               headers=headers)

        answers = [call(f"sbt_guess{n}").status_code for n in range(3)]
        tally("abuse", 5)
        assert answers == [401, 401, 401]
        over = call("sbt_guess3")
        assert over.status_code == 429 and over.json()["code"] == "too_many_failures"
        assert 1 <= int(over.headers["retry-after"]) <= 3600
        assert call(token_for(owner)).status_code == 429  # a right guess looks the same
    finally:
        cache.delete(counter)
