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
