"""Abusive input: hostile file names and contents, empty and oversized bodies (chunked too),
script in Markdown notes and in ticket titles. Each is refused with a status and a `code`, or
made harmless, and leaves nothing behind: no row, no stored object, no 500."""

import asyncio
import json
import re

import pytest
from django.core.asgi import get_asgi_application
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from core.uploads import limit_request_body
from settlements import services
from settlements.models import Settlement, SettlementAttachment
from tests.settlements.test_attachments import stored_names
from tests.tally import tally

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
EXE = b"MZ\x90\x00" + b"\x00" * 64
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 32
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
PHP = b"<?php system($_GET['c']); ?>"


def _upload(client, settlement, name, content):
    return client.post(f"/api/settlements/{settlement.pk}/attachments/",
                       {"file": SimpleUploadedFile(name, content)}, format="multipart")


def assert_nothing_stored(settlement):
    assert not SettlementAttachment.objects.exists()
    assert stored_names(settlement.pk) == []


def assert_safe_disposition(value: str, expected_name: str):
    """One header line, the name quoted or RFC 5987-encoded, nothing that could end it early."""
    assert not re.search(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]", value), value
    disposition, _, rest = value.partition("; ")
    assert disposition in {"attachment", "inline"}
    quoted = re.fullmatch(r'filename="([^"\\]*)"', rest)
    encoded = re.fullmatch(r"filename\*=utf-8''([A-Za-z0-9%!#$&+.^_`|~-]+)", rest)
    assert quoted or encoded, value
    if quoted:
        assert quoted.group(1) == expected_name


# --- File names -----------------------------------------------------------------------------

# (name as sent, content, the stored display name; None = refused with the code in the last column)
HOSTILE_NAMES = [
    ("../../etc/passwd", b"root:x:0:0", None, "extension_not_allowed"),
    ("../../../../etc/cron.d/x.pdf", PDF, "x.pdf", None),
    ("..\\..\\windows\\x.pdf", PDF, "x.pdf", None),
    ("/etc/shadow.pdf", PDF, "shadow.pdf", None),
    ("C:\\Windows\\System32\\report.pdf", PDF, "report.pdf", None),
    ("in\x00voice.pdf", PDF, "invoice.pdf", None),  # Django's multipart parser drops the NUL
    ("tab\tand\x1bescape.pdf", PDF, "tabandescape.pdf", None),
    ("invoice\u202efdp.exe", EXE, None, "extension_not_allowed"),  # shows as "invoiceexe.pdf"
    ("report\u202egnp.pdf", PDF, "reportgnp.pdf", None),
    ("zero\u200bwidth\u2066.pdf", PDF, "zerowidth.pdf", None),
    ("faktura-\u00e6\u00f8\u00e5-\u0142\u00f3d\u017a.pdf", PDF,
     "faktura-\u00e6\u00f8\u00e5-\u0142\u00f3d\u017a.pdf", None),
    ("invoice.pdf.exe", EXE, None, "extension_not_allowed"),
    ("invoice.pdf.exe", PDF, None, "extension_not_allowed"),
    ("shell.php", PHP, None, "extension_not_allowed"),
    ("page.html", HTML, None, "extension_not_allowed"),
    ("image.svg", SVG, None, "extension_not_allowed"),
    (".htaccess", b"AddType application/x-httpd-php .pdf", None, "extension_not_allowed"),
    ("x.php.pdf", PDF, "x.php.pdf", None),  # the last extension counts, and the content is a PDF
]


@pytest.mark.parametrize("name,content,stored,code", HOSTILE_NAMES)
def test_hostile_file_names_are_refused_or_sanitised(client_for, owner, settlement, name, content, stored, code):
    tally("abuse")
    client = client_for(owner)
    response = _upload(client, settlement, name, content)
    if stored is None:
        assert response.status_code == 400 and response.json()["code"] == code, response.content
        assert_nothing_stored(settlement)
        return
    assert response.status_code == 201, response.content
    assert response.json()["name"] == stored
    attachment = SettlementAttachment.objects.get()
    # The key is ours (random, the checked extension), never derived from the name sent.
    assert re.fullmatch(rf"settlements/{settlement.pk}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.pdf", attachment.file.name)
    assert stored_names(settlement.pk) == [attachment.file.name]
    download = client.get(f"/api/settlements/{settlement.pk}/attachments/{attachment.pk}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == content
    assert download["X-Content-Type-Options"] == "nosniff" and download["Content-Type"] == "application/pdf"
    assert_safe_disposition(download["Content-Disposition"], stored)


@pytest.mark.parametrize("name,stored", [
    ("../../etc/x.pdf", "x.pdf"),
    ("..\\..\\x.pdf", "x.pdf"),
    ("/abs/path/x.pdf", "x.pdf"),
    ("a\r\nContent-Type: text/html\r\n\r\n<script>.pdf", "html_____script_.pdf"),
    ('quote"semi;colon.pdf', "quote_semi;colon.pdf"),
    ("in\x00voice.pdf", "in_voice.pdf"),
    ("evil\u202egnp.pdf", "evilgnp.pdf"),
    ("line\u2028break.pdf", "linebreak.pdf"),
    ("c1\x85control\x9b.pdf", "c1_control_.pdf"),
    # Persian needs its zero-width non-joiner (the MCP tool passes it; Django's multipart parser drops it).
    ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf"),
    ("..", None),
    ("", None),
])
def test_names_reaching_the_service_unparsed_are_sanitised(owner, settlement, name, stored):
    """The MCP tool and other callers hand the service a name no multipart parser has cleaned."""
    tally("abuse")
    upload = ContentFile(PDF, name=name)
    if stored is None:
        with pytest.raises(services.InvalidInput) as refused:
            services.attachment_upload(actor=owner, settlement=settlement, uploaded=upload)
        assert refused.value.code == "extension_not_allowed"
        assert_nothing_stored(settlement)
        return
    attachment = services.attachment_upload(actor=owner, settlement=settlement, uploaded=upload)
    assert attachment.original_name == stored
    assert re.fullmatch(rf"settlements/{settlement.pk}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.pdf", attachment.file.name)


# --- Contents -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,content,code", [
    ("invoice.pdf", HTML, "content_mismatch"),
    ("invoice.pdf", EXE, "content_mismatch"),
    ("invoice.pdf", ELF, "content_mismatch"),
    ("photo.png", HTML, "content_mismatch"),
    ("photo.png", SVG, "content_mismatch"),
    ("photo.jpg", PNG, "content_mismatch"),
    ("photo.webp", b"RIFF\x00\x00\x00\x00WAVE", "content_mismatch"),
    ("archive.zip", EXE, "content_mismatch"),
    ("x.php.pdf", PHP, "content_mismatch"),
    ("notes.txt", EXE, "content_mismatch"),
    ("notes.md", ELF, "content_mismatch"),
    ("data.csv", PDF, "content_mismatch"),
    ("empty.pdf", b"", "empty"),
    ("empty.txt", b"", "empty"),
])
def test_content_must_match_the_extension(client_for, owner, settlement, name, content, code):
    tally("abuse")
    response = _upload(client_for(owner), settlement, name, content)
    assert response.status_code == 400 and response.json()["code"] == code, response.content
    assert_nothing_stored(settlement)


def test_an_empty_file_is_refused_by_the_service_too(owner, settlement):
    tally("abuse")
    with pytest.raises(services.InvalidInput) as refused:
        services.attachment_upload(actor=owner, settlement=settlement, uploaded=ContentFile(b"", name="empty.txt"))
    assert refused.value.code == "empty"
    assert_nothing_stored(settlement)


def test_dashboard_upload_refuses_a_disguised_executable(owner, settlement):
    tally("abuse")
    client = Client()
    client.force_login(owner)
    response = client.post(reverse("settlements:attachment-upload", args=[settlement.pk]),
                           {"file": SimpleUploadedFile("invoice.pdf", EXE), "category": "invoice", "state": "draft"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and response["X-Error-Code"] == "content_mismatch"
    assert_nothing_stored(settlement)


# --- Oversized bodies -----------------------------------------------------------------------

def _asgi_post(path: str, content_type: bytes, *, chunks: int, chunk_size: int = 64 * 1024):
    """POST a body of `chunks` chunks without a Content-Length (chunked transfer) through the
    ASGI stack; returns (status, JSON body, chunks the server read)."""
    app = limit_request_body(get_asgi_application())
    read = 0
    sent = []

    async def receive():
        nonlocal read
        if read >= chunks:
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": b"x" * chunk_size, "more_body": read < chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", content_type),
                         (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], json.loads(body), read


def test_a_chunked_upload_past_the_limit_is_cut_off_with_413(settlement, settings):
    """No Content-Length to refuse early: the server must stop reading once the body passes the
    limit, not spool all 64 MB first."""
    tally("abuse")
    settings.SETTLEMENT_ATTACHMENT_MAX_BYTES = 1024 * 1024
    status, body, read = _asgi_post(f"/api/settlements/{settlement.pk}/attachments/",
                                    b"multipart/form-data; boundary=x", chunks=1024)
    assert status == 413 and body["code"] == "file_too_large"
    assert read <= 1 + (settings.SETTLEMENT_ATTACHMENT_MAX_BYTES + 64 * 1024) // (64 * 1024)
    assert_nothing_stored(settlement)


def test_a_chunked_json_body_past_the_memory_limit_is_cut_off_with_413(settings):
    tally("abuse")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
    status, body, read = _asgi_post("/api/settlements/", b"application/json", chunks=1024)
    assert status == 413 and body["code"] == "request_too_large"
    assert read <= 1 + settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (64 * 1024)
    assert not Settlement.objects.exists()


def test_an_oversized_json_body_is_413_with_a_code(client_for, owner, mnx, settings, caplog):
    """Refused from its Content-Length, before anything reads the body (Django would read it
    into memory first and then refuse it: logged as django.security.RequestDataTooBig)."""
    tally("abuse")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    payload = {"name": "Huge", "period_start": "2026-10-01", "period_end": "2026-10-31", "projects": ["MNX"],
               "notes": "x" * (128 * 1024)}
    response = client_for(owner).post("/api/settlements/", payload, format="json")
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "request_too_large" and "detail" in response.json()
    assert not Settlement.objects.exists()
    assert not [record for record in caplog.records if record.name.startswith("django.security")]
    payload["notes"] = "small"
    assert client_for(owner).post("/api/settlements/", payload, format="json").status_code == 201


def test_an_oversized_form_post_is_413_not_a_plain_400(owner, mnx, settings):
    tally("abuse")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    client = Client()
    client.force_login(owner)
    response = client.post(reverse("settlements:create"), {"name": "Huge", "period_start": "2026-10-01",
                                                           "period_end": "2026-10-31", "projects": [mnx.pk],
                                                           "notes": "x" * (128 * 1024)})
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert not Settlement.objects.exists()


# --- Script in Markdown and titles ------------------------------------------------------------

MARKDOWN_ATTACKS = [
    '<script>alert("md-1")</script>',
    '<img src=x onerror=alert("md-2")>',
    '<a href="javascript:alert(\'md-3\')">click md-3</a>',
    "[click md-4](javascript:alert('md-4'))",
    "[click md-5](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<iframe src="https://evil.example/md-6"></iframe>',
    '<div onmouseover="alert(\'md-7\')">hover md-7</div>',
    "[click md-8](JaVaScRiPt:alert('md-8'))",
    '<svg><script>alert("md-9")</script></svg>',
    '<style>body{background:url("https://evil.example/md-10")}</style>',
    "<a href=\"&#106;avascript:alert('md-11')\">click md-11</a>",
    '<form action="https://evil.example/md-12"><input name=p></form>',
]


def test_markdown_notes_are_rendered_without_script(owner, mnx):
    tally("abuse", len(MARKDOWN_ATTACKS))
    from datetime import date

    notes = "**Kept** and [a safe link](https://example.com/ok)\n\n" + "\n\n".join(MARKDOWN_ATTACKS)
    settlement = services.settlement_create(actor=owner, name="Notes", period_start=date(2026, 10, 1),
                                            period_end=date(2026, 10, 31), projects=[mnx], notes=notes)
    client = Client()
    client.force_login(owner)
    html = client.get(reverse("settlements:detail", args=[settlement.pk])).content.decode()
    rendered = re.search(r'<div class="markdown" id="settlement-notes">(.*?)</div>\s*(?:</section>|$)', html,
                         re.S).group(1)
    assert "<strong>Kept</strong>" in rendered and 'href="https://example.com/ok"' in rendered
    elements = _elements(rendered)
    assert {tag for tag, _ in elements} <= {"p", "strong", "em", "a", "code", "pre"}, elements
    for tag, attributes in elements:
        assert all(not name.startswith("on") and name not in {"style", "src"} for name, _ in attributes), tag
        href = dict(attributes).get("href") or ""
        assert href in {"", "https://example.com/ok"}, href
    # The attack text survives only as escaped text.
    assert "md-1" in rendered or "md-2" in rendered


def _elements(html: str) -> list[tuple[str, list]]:
    """Every start tag the browser would build from `html`, with its attributes (entities decoded)."""
    from html.parser import HTMLParser

    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collect().feed(html)
    return found


TITLE = "<img src=x onerror=alert('title')><script>alert(\"title\")</script>"


def test_html_in_ticket_titles_is_escaped_on_every_page(owner, mnx, settlement, ticket):
    tally("abuse")
    ticket.title, ticket.assignee = TITLE, owner
    ticket.save(update_fields=["title", "assignee"])
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    settlement.name = TITLE
    settlement.save(update_fields=["name"])
    client = Client()
    client.force_login(owner)
    pages = [
        reverse("dashboard"),
        reverse("tickets:ticket-list"),
        reverse("tickets:ticket-list") + "?q=img",
        reverse("tickets:ticket-detail", args=[ticket.key]),
        reverse("tickets:project-detail", args=[mnx.key]),
        reverse("tickets:project-board", args=[mnx.key]),
        reverse("settlements:list"),
        reverse("settlements:detail", args=[settlement.pk]),
        reverse("settlements:edit", args=[settlement.pk]),
        reverse("settlements:ticket-search", args=[settlement.pk]) + "?q=img",
    ]
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    _, token = services.share_link_create(actor=owner, settlement=settlement)
    pages.append(reverse("customer:settlement", kwargs={"token": token}))
    shown = []
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<img src=x" not in html and "<script>alert" not in html, url
        if "&lt;img src=x onerror=alert(&#x27;title&#x27;)&gt;" in html:
            shown.append(url)
    # Every page shows the title or the settlement's name, escaped, except the project page (budgets,
    # no ticket titles) and the settlement's ticket search (it does not offer a linked ticket again).
    assert set(pages) - set(shown) <= {reverse("tickets:project-detail", args=[mnx.key]),
                                       reverse("settlements:ticket-search", args=[settlement.pk]) + "?q=img"}, shown
