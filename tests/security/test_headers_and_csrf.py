"""CSRF on every page that takes a POST and on the API under a session, and the security headers
(CSP, framing, nosniff, Referrer-Policy, HSTS) on pages, API answers, downloads and the customer
page. The URLs come from the URL conf, so a page added later is covered without a change here."""

import json
import os
import re
import subprocess
import sys
from datetime import date
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import Resolver404, URLPattern, get_resolver, resolve, reverse
from rest_framework.authentication import SessionAuthentication

from settlements import services
from tests.tally import tally

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()\\]|\\.)*)\)")


def url_patterns():
    """(regex of the whole path, pattern) for every route of the project."""

    def walk(patterns, prefix):
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
            if isinstance(pattern, URLPattern):
                yield regex, pattern
            else:
                yield from walk(pattern.url_patterns, regex.removesuffix("\\Z").removesuffix("$"))

    yield from walk(get_resolver().url_patterns, "")


def sample_path(regex: str, values: dict) -> str | None:
    """A concrete path matching `regex`, its named groups filled from `values` (by name, else the
    first candidate the group accepts). None when no candidate fits."""

    def fill(match):
        name, group = match.group(1), match.group(2)
        for candidate in [*(str(value) for value in values.get(name, ())), "1", "MNX-1", "MNX", "billing", "x"]:
            if re.fullmatch(group, candidate):
                return candidate
        raise LookupError(name)

    try:
        path = GROUP.sub(fill, regex)
    except LookupError:
        return None
    path = path.removesuffix("\\Z").removesuffix("$").replace("/?", "/")
    return "/" + re.sub(r"\\(.)", r"\1", path)


@pytest.fixture
def world(owner, settlement, ticket):
    """Real objects behind every kind of id in the URLs (views exempt from the middleware's check
    look them up before they check the token themselves). Billing data too: a draft invoice
    with reserved items, so the admin's lists and workbench draw their status badges."""
    from billing import invoicing
    from tests.billing.conftest import reconcile
    from tests.factories import ClientFactory, ContractFactory, TimeEntryFactory

    ContractFactory(client=ClientFactory(name="Fjord AS"), projects=[ticket.project], hourly_rate="1000.00")
    TimeEntryFactory(ticket=ticket, user=owner, minutes=60, work_date=date(2026, 10, 5))
    reconcile()
    owner.is_superuser = owner.is_staff = True
    owner.save(update_fields=["is_superuser", "is_staff"])
    invoicing.run_build(actor=owner, period=date(2026, 10, 1))
    ticket.project.budget_hours = 10  # the project pages then draw budget meters
    ticket.project.save(update_fields=["budget_hours"])
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    attachment = services.attachment_upload(actor=owner, settlement=settlement,
                                            uploaded=SimpleUploadedFile("a.pdf", PDF))
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    link, token = services.share_link_create(actor=owner, settlement=settlement)
    return {"pk": [settlement.pk], "attachment_id": [attachment.pk], "ticket_id": [ticket.pk],
            "link_id": [link.pk], "key": [ticket.key, ticket.project.key], "token": [token]}


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._base_manager.count() for model in apps.get_models()
            if model._meta.managed and not model._meta.proxy}


def routes(values: dict, *, api: bool):
    found, unsampled = [], []
    for regex, pattern in url_patterns():
        if regex.startswith("api/") != api or "(?P<format>" in regex:
            continue
        path = sample_path(regex, values)
        try:
            matches = path is not None and resolve(path).func == pattern.callback
        except Resolver404:
            matches = False
        (found if matches else unsampled).append((path or regex, pattern))
    assert not unsampled, f"routes this test cannot build a URL for: {[p for p, _ in unsampled]}"
    return found


FORGED_BODY = {"name": "forged", "status": "draft", "title": "forged", "language": "pl", "minutes": "60",
               "category": "invoice", "state": "draft", "ticket": "MNX-1", "description": "forged",
               "username": "owner", "password": "x"}


def test_every_page_refuses_a_post_without_a_csrf_token(owner, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = row_counts()
    pages = routes(world, api=False)
    assert len(pages) > 100  # dashboard, customer page, auth, i18n and the admin
    accepted = {}
    for path, _pattern in pages:
        tally("abuse")
        body = {**FORGED_BODY, "file": SimpleUploadedFile("forged.pdf", PDF)}
        response = client.post(path, body)
        if response.status_code == 405:  # does not take POST at all
            continue
        if response.status_code != 403 or b"CSRF verification failed" not in response.content:
            accepted[path] = response.status_code
    assert accepted == {}, f"POST without a CSRF token not refused: {accepted}"
    assert row_counts() == before


def test_the_api_refuses_unsafe_methods_of_a_session_without_a_csrf_token(owner, world):
    """Bearer clients need no CSRF token (no ambient credentials); a browser session does. Views
    without session authentication (the customer API: its token is in the URL) are exempt."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = row_counts()
    accepted, exempt = {}, []
    for path, pattern in routes(world, api=True):
        view = getattr(pattern.callback, "cls", None)
        if view is None or not any(issubclass(auth, SessionAuthentication) for auth in view.authentication_classes):
            exempt.append(path)
            continue
        for method in ("post", "put", "patch", "delete"):
            tally("abuse")
            response = getattr(client, method)(path, json.dumps(FORGED_BODY), content_type="application/json",
                                               HTTP_ACCEPT="application/json")
            if response.status_code == 405:
                continue
            if response.status_code != 403 or b"CSRF" not in response.content:
                accepted[f"{method.upper()} {path}"] = response.status_code
    assert accepted == {}, f"unsafe API calls without a CSRF token not refused: {accepted}"
    assert all(path.startswith("/api/public/") for path in exempt), exempt
    assert row_counts() == before


def test_every_post_form_in_the_templates_carries_the_token():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "templates")
    missing = []
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                text = handle.read()
            for form in re.findall(r"<form\b[^>]*>.*?</form>", text, re.S | re.I):
                if re.search(r'method="post"', form, re.I) and "csrf_token" not in form:
                    missing.append(os.path.relpath(os.path.join(folder, name), root))
    assert missing == []


def test_htmx_requests_send_the_token(owner, world, settlement):
    """base.html puts the token in hx-headers on <body>; htmx sends it with every request."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    html = client.get(reverse("settlements:detail", args=[settlement.pk])).content.decode()
    assert "hx-post" in html
    headers = json.loads(re.search(r"<body hx-headers='([^']*)'", html).group(1))
    url = reverse("settlements:transition", args=[settlement.pk])
    refused = client.post(url, {"status": "draft"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    accepted = client.post(url, {"status": "draft"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=headers["X-CSRFToken"])
    assert accepted.status_code == 200, accepted.content
    settlement.refresh_from_db()
    assert settlement.status == "draft"


# --- Security headers ---------------------------------------------------------------------------

class InlineCode(HTMLParser):
    """Inline scripts and styles of a page, and the nonces they carry."""

    def __init__(self):
        super().__init__()
        self.scripts, self.styles, self.style_attributes, self.handlers = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and "src" not in attributes and attributes.get("type") != "application/json":
            self.scripts.append(attributes.get("nonce"))
        if tag == "style":
            self.styles.append(attributes.get("nonce"))
        if "style" in attributes:
            self.style_attributes.append(tag)
        self.handlers.extend(name for name in attributes if name.startswith("on"))


def policy(response) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.partition(" ")[2] for part in
            (piece.strip() for piece in response["Content-Security-Policy"].split(";")) if part}


def assert_common_headers(response, *, framing="DENY"):
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == framing
    assert response["Referrer-Policy"] in {"same-origin", "no-referrer"}
    ancestors = policy(response)["frame-ancestors"]
    assert ancestors == ("'none'" if framing == "DENY" else "'self'")


def test_every_page_sends_the_headers_and_runs_no_inline_code(owner, world):
    client = Client()
    client.force_login(owner)  # a superuser: the admin's pages too
    checked = badges = 0
    for path, _pattern in routes(world, api=False):
        response = client.get(path)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        checked += 1
        badges += response.content.count(b'class="billing-badge ')
        assert_common_headers(response)
        csp = policy(response)
        assert csp.get("object-src", csp.get("default-src")) in {"'none'"} or csp["default-src"] == "'none'", path
        assert "'unsafe-inline'" not in csp.get("script-src", "") and "'unsafe-eval'" not in csp.get("script-src", "")
        assert "'unsafe-inline'" not in csp.get("style-src", ""), path
        found = InlineCode()
        found.feed(response.content.decode())
        nonce = re.search(r"'nonce-([^']+)'", csp.get("script-src", "") + csp.get("style-src", ""))
        allowed = {nonce.group(1)} if nonce else set()
        assert set(found.scripts) <= allowed and set(found.styles) <= allowed, (path, found.scripts, found.styles)
        assert found.style_attributes == [] and found.handlers == [], (path, found.style_attributes, found.handlers)
    assert checked > 50 and badges > 0, (checked, badges)


def test_headers_on_api_answers_downloads_and_the_customer_page(owner, world, settlement, api_client):
    from rbac import services as rbac_services

    _, token = rbac_services.api_token_create(actor=owner, user=owner, name="t")
    api = api_client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200
    assert_common_headers(api)
    refused = api_client.get("/api/users/me/", HTTP_AUTHORIZATION="Bearer sbt_nope")
    assert refused.status_code == 401
    assert_common_headers(refused)

    attachment_id = world["attachment_id"][0]
    download = api_client.get(f"/api/settlements/{settlement.pk}/attachments/{attachment_id}/download/",
                              HTTP_AUTHORIZATION=f"Bearer {token}")
    assert download.status_code == 200
    assert_common_headers(download)

    client = Client()
    client.force_login(owner)
    # The dashboard previews PDFs in an iframe of its own page: same-origin framing only there.
    preview = client.get(reverse("settlements:attachment-download", args=[settlement.pk, attachment_id]),
                         {"inline": "1"})
    assert preview.status_code == 200 and preview["Content-Disposition"].startswith("inline")
    assert_common_headers(preview, framing="SAMEORIGIN")

    share = world["token"][0]
    page = Client().get(reverse("customer:settlement", kwargs={"token": share}))
    assert page.status_code == 200
    assert_common_headers(page)
    assert policy(page)["default-src"] == "'none'"
    customer_download = Client().get(reverse("customer:attachment", kwargs={"token": share,
                                                                           "attachment_id": attachment_id}))
    assert customer_download.status_code == 200
    assert_common_headers(customer_download)
    public_api = Client().get(f"/api/public/settlements/{share}/")
    assert public_api.status_code == 200
    assert_common_headers(public_api)


def test_the_api_docs_load_swagger_without_inline_script(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    found = InlineCode()
    found.feed(response.content.decode())
    assert found.scripts == []
    csp = policy(response)
    assert "'unsafe-inline'" not in csp["script-src"] and csp["frame-ancestors"] == "'none'"
    script = client.get(reverse("api-docs"), {"script": ""})
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


def test_hsts_is_on_by_default_in_production():
    """Production settings load in a process of their own (they need a secret, and whitenoise)."""
    code = ("from django.conf import settings; import json; print(json.dumps([settings.SECURE_HSTS_SECONDS, "
            "settings.SECURE_SSL_REDIRECT, settings.SECURE_CONTENT_TYPE_NOSNIFF, settings.X_FRAME_OPTIONS, "
            "settings.SECURE_REFERRER_POLICY, settings.MIDDLEWARE]))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", "DJANGO_SECRET_KEY": "x" * 50}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
    hsts, redirect, nosniff, frame, referrer, middleware = json.loads(out.stdout)
    assert hsts >= 180 * 24 * 3600 and redirect and nosniff and frame == "DENY" and referrer
    security = middleware.index("django.middleware.security.SecurityMiddleware")
    assert middleware[security + 1] == "whitenoise.middleware.WhiteNoiseMiddleware"
    assert {"core.middleware.content_security_policy", "core.middleware.limit_request_size"} <= set(middleware)


def test_hsts_header_on_https_answers(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    assert client.get("/", secure=True)["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/")  # never over plain HTTP
