"""Large files through a real HTTP server: 200 MB + 1 byte is refused with 413, and a large file
goes up and comes back down without ever being held in memory (peak measured with tracemalloc,
which sees the server thread too: it runs in this process)."""

import hashlib
import http.client
import json
import tracemalloc
import uuid
from urllib.parse import urlparse

import pytest

from rbac import services as rbac_services
from settlements.models import SettlementAttachment

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
PEAK_LIMIT = 64 * MB
CHUNK = MB
PDF_HEAD = b"%PDF-1.4\n"


def _pattern(offset: int, size: int) -> bytes:
    return bytes((offset + i) % 251 for i in range(size))


def _upload(live_server, token, settlement_id, size):
    """Stream a multipart upload of `size` bytes (PDF header + pattern) in 1 MB chunks."""
    boundary = uuid.uuid4().hex
    preamble = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n"
                f"Content-Type: application/pdf\r\n\r\n").encode()
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    url = urlparse(live_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    connection.putrequest("POST", f"/api/settlements/{settlement_id}/attachments/")
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(preamble) + size + len(epilogue)))
    connection.endheaders()
    digest = hashlib.sha256()
    try:
        connection.send(preamble)
        connection.send(PDF_HEAD)
        digest.update(PDF_HEAD)
        sent = len(PDF_HEAD)
        block = _pattern(0, CHUNK)
        while sent < size:
            piece = block[: min(CHUNK, size - sent)]
            connection.send(piece)
            digest.update(piece)
            sent += len(piece)
        connection.send(epilogue)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it has refused the upload
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, json.loads(body or b"{}"), digest.hexdigest()


def _download(live_server, token, path):
    url = urlparse(live_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    digest, size = hashlib.sha256(), 0
    while chunk := response.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    connection.close()
    return response.status, size, digest.hexdigest()


@pytest.fixture
def token(owner):
    return rbac_services.api_token_create(actor=owner, user=owner, name="stream")[1]


def test_200_mb_plus_one_byte_is_413_and_leaves_nothing(live_server, settlement, token):
    tracemalloc.start()
    try:
        status, body, _ = _upload(live_server, token, settlement.pk, 200 * MB + 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413 and body["code"] == "file_too_large"
    assert not SettlementAttachment.objects.exists()
    assert peak < PEAK_LIMIT, f"peak {peak / MB:.1f} MB"


def test_a_large_file_streams_up_and_down_in_bounded_memory(live_server, settlement, token):
    size = 120 * MB
    tracemalloc.start()
    try:
        status, body, sent_digest = _upload(live_server, token, settlement.pk, size)
        assert status == 201, body
        path = f"/api/settlements/{settlement.pk}/attachments/{body['id']}/download/"
        got_status, got_size, got_digest = _download(live_server, token, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body["size"] == size
    assert (got_status, got_size, got_digest) == (200, size, sent_digest)
    assert peak < PEAK_LIMIT, f"peak {peak / MB:.1f} MB for a {size // MB} MB file"
