"""Attachments through the API against the configured storage (moto's S3 server in CI, local
files otherwise): limits, content checks, keys, streaming, no orphans either way."""

import contextlib
import re

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from settlements import events, services
from settlements.models import SettlementAttachment
from tests.factories import UserFactory, grant

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
EXE = b"MZ\x90\x00" + b"\x00" * 64


def _upload(client, settlement, name, content, **fields):
    return client.post(f"/api/settlements/{settlement.pk}/attachments/",
                       {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def stored_names(settlement_id) -> list[str]:
    """Every object under the settlement's prefix in the configured storage."""
    found = []

    def walk(path):
        directories, names = default_storage.listdir(path)
        found.extend(f"{path}/{name}" for name in names)
        for directory in directories:
            walk(f"{path}/{directory}")

    with contextlib.suppress(FileNotFoundError):
        walk(f"settlements/{settlement_id}")
    return sorted(found)


def test_upload_list_download_and_preview(client_for, owner, settlement):
    client = client_for(owner)
    response = _upload(client, settlement, "../Faktura: 10/2026.PDF", PDF, category="invoice", state="signed")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "2026.pdf" and body["category"] == "invoice" and body["state"] == "signed"
    assert body["size"] == len(PDF) and body["previewable"] is True
    attachment = SettlementAttachment.objects.get()
    assert re.fullmatch(rf"settlements/{settlement.pk}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.pdf", attachment.file.name)
    assert stored_names(settlement.pk) == [attachment.file.name]

    url = f"/api/settlements/{settlement.pk}/attachments/{attachment.pk}/download/"
    download = client.get(url)
    assert b"".join(download.streaming_content) == PDF
    assert download["Content-Disposition"].startswith("attachment;") and download["X-Content-Type-Options"] == "nosniff"
    preview = client.get(url, {"inline": "1"})
    assert preview["Content-Disposition"].startswith("inline;") and preview["Content-Type"] == "application/pdf"
    assert [row["id"] for row in client.get(f"/api/settlements/{settlement.pk}/attachments/").json()] == [
        attachment.pk]
    assert list(settlement.events.values_list("kind", flat=True)) == ["created", "attachment_uploaded"]


def test_text_files_are_never_shown_inline(client_for, owner, settlement):
    client = client_for(owner)
    attachment_id = _upload(client, settlement, "notes.txt", b"plain text").json()["id"]
    response = client.get(f"/api/settlements/{settlement.pk}/attachments/{attachment_id}/download/", {"inline": "1"})
    assert response["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize("name,content,code", [
    ("virus.pdf", EXE, "content_mismatch"),
    ("image.png", PDF, "content_mismatch"),
    ("notes.txt", EXE, "content_mismatch"),
    ("data.csv", b"a,b\x00c", "content_mismatch"),
    ("tool.exe", EXE, "extension_not_allowed"),
    ("page.html", b"<html>", "extension_not_allowed"),
    ("noextension", b"text", "extension_not_allowed"),
])
def test_bad_files_are_refused_and_leave_nothing(client_for, owner, settlement, name, content, code):
    response = _upload(client_for(owner), settlement, name, content)
    assert response.status_code == 400 and response.json()["code"] == code
    assert not SettlementAttachment.objects.exists() and stored_names(settlement.pk) == []


def test_uploads_are_allowed_in_any_status_but_delete_only_in_draft(client_for, owner, settlement,
                                                                       django_capture_on_commit_callbacks):
    client = client_for(owner)
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    attachment_id = _upload(client, settlement, "protocol.png", PNG, category="acceptance_protocol").json()["id"]
    url = f"/api/settlements/{settlement.pk}/attachments/{attachment_id}/"
    assert client.patch(url, {"state": "signed"}, format="json").json()["state"] == "signed"
    response = client.delete(url)
    assert response.status_code == 409 and response.json()["code"] == "settlement_not_draft"
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    name = SettlementAttachment.objects.get().file.name
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(url).status_code == 204
    assert not default_storage.exists(name)
    kinds = list(settlement.events.values_list("kind", flat=True))
    assert kinds[-3:] == ["attachment_changed", "transitioned", "attachment_deleted"]


def test_attachment_rights(client_for, owner, settlement, mnx, acme):
    writer = UserFactory(username="w")
    grant(writer, mnx, "admin")
    grant(writer, acme, "admin")  # settlements read/write, no delete
    client = client_for(writer)
    attachment_id = _upload(client, settlement, "a.pdf", PDF).json()["id"]
    response = client.delete(f"/api/settlements/{settlement.pk}/attachments/{attachment_id}/")
    assert response.status_code == 403
    stranger = UserFactory(username="s")
    grant(stranger, mnx, "member")
    assert _upload(client_for(stranger), settlement, "b.pdf", PDF).status_code == 404
    assert SettlementAttachment.objects.count() == 1 and len(stored_names(settlement.pk)) == 1


def test_a_database_failure_removes_the_stored_object(client_for, owner, settlement, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("database write failed")

    monkeypatch.setattr(events, "attachment_uploaded", explode)
    client = client_for(owner)
    client.raise_request_exception = False
    response = client.post(f"/api/settlements/{settlement.pk}/attachments/",
                           {"file": SimpleUploadedFile("a.pdf", PDF)}, format="multipart")
    assert response.status_code == 500
    assert not SettlementAttachment.objects.exists() and stored_names(settlement.pk) == []


def test_storage_failure_is_503_and_writes_no_row(client_for, owner, settlement, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("storage unreachable")

    monkeypatch.setattr(services.files, "store_upload", unreachable)
    response = _upload(client_for(owner), settlement, "a.pdf", PDF)
    assert response.status_code == 503 and response.json()["code"] == "storage_unavailable"
    assert not SettlementAttachment.objects.exists()


def test_the_eleventh_attachment_is_refused(client_for, owner, settlement, settings):
    client = client_for(owner)
    for n in range(settings.SETTLEMENT_ATTACHMENT_MAX_FILES):
        assert _upload(client, settlement, f"{n}.pdf", PDF).status_code == 201
    response = _upload(client, settlement, "11.pdf", PDF)
    assert response.status_code == 409 and response.json()["code"] == "too_many_attachments"
    assert SettlementAttachment.objects.count() == 10 and len(stored_names(settlement.pk)) == 10


def test_small_limit_gives_413(client_for, owner, settlement, settings):
    settings.SETTLEMENT_ATTACHMENT_MAX_BYTES = 1024
    response = _upload(client_for(owner), settlement, "big.pdf", PDF + b"x" * 1024)
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"
    assert not SettlementAttachment.objects.exists() and stored_names(settlement.pk) == []


@pytest.mark.s3
def test_unreachable_s3_endpoint_is_503_and_writes_no_row(client_for, owner, settlement, monkeypatch):
    from botocore.config import Config
    from storages.backends.s3 import S3Storage

    dead = S3Storage(bucket_name="nowhere", endpoint_url="http://127.0.0.1:9", access_key="x", secret_key="x",
                     region_name="us-east-1", addressing_style="path",
                     client_config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1))
    monkeypatch.setattr(services.files, "default_storage", dead)
    response = _upload(client_for(owner), settlement, "a.pdf", PDF)
    assert response.status_code == 503 and response.json()["code"] == "storage_unavailable"
    assert not SettlementAttachment.objects.exists()
