"""The customer page behind a share link (/s/<token>/): number, name, period, status, projects,
tickets with hours and amounts, totals, attachments to download, and the customer's acceptance.

No login and no way into the rest of the app: its own minimal layout (not base.html), a strict
Content-Security-Policy (no scripts, no inline styles), never indexed, cached or leaked through
the Referer. Unknown, draft, revoked and expired links all answer the same 404 page. What the
page shows is what the customer API shows (settlements.api.public.public_payload)."""

from functools import wraps

from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.errors import Conflict, InvalidInput, NotFound, ServiceError
from core.pages import add_service_errors

from . import services
from .api.downloads import attachment_response, served_over_asgi
from .api.public import public_payload, shared_settlement
from .choices import AttachmentCategory, AttachmentState, SettlementStatus
from .forms import AcceptanceForm
from .models import SettlementAttachment

PAGE_TEMPLATE = "customer/settlement.html"
NOT_FOUND_TEMPLATE = "customer/not_found.html"
ERROR_TEMPLATE = "customer/error.html"

# Nothing but our own stylesheet and images may load; forms post only back to us; no framing.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
# Whoever holds the link may see the settlement: keep it out of search engines, shared caches
# and the Referer of anything the customer follows from the page.
PRIVATE_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                   "Cache-Control": "private, no-store"}


def _error_page(request, error: ServiceError):
    template = NOT_FOUND_TEMPLATE if isinstance(error, NotFound) else ERROR_TEMPLATE
    response = render(request, template, {"error": error}, status=error.status_code)
    response["X-Error-Code"] = error.code
    if getattr(error, "retry_after", None):
        response["Retry-After"] = str(error.retry_after)
    return response


def customer_page(view):
    """Refusals as pages of the customer layout, and the page headers on every answer."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            response = view(request, *args, **kwargs)
        except ServiceError as error:
            response = _error_page(request, error)
        for header, value in PRIVATE_HEADERS.items():
            response[header] = value
        if not response.has_header("Content-Disposition"):
            # A policy on a downloaded PDF could stop the browser's viewer; the HTML needs it.
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return wrapper


def _page_payload(settlement) -> dict:
    """The customer payload with the labels the page prints in the visitor's language."""
    payload = public_payload(settlement)
    payload["status_label"] = SettlementStatus(payload["status"]).label
    for attachment in payload["attachments"]:
        attachment["category_label"] = AttachmentCategory(attachment["category"]).label
        attachment["state_label"] = AttachmentState(attachment["state"]).label
    return payload


def _render_page(request, token: str, settlement, form: AcceptanceForm, *, status: int = 200, refusal=None):
    context = {"token": token, "settlement": _page_payload(settlement), "form": form, "refusal": refusal}
    response = render(request, PAGE_TEMPLATE, context, status=status)
    if refusal is not None:
        response["X-Error-Code"] = refusal.code
    return response


@customer_page
@require_GET
def settlement_page(request, token: str):
    settlement, _ = shared_settlement(request, token)
    return _render_page(request, token, settlement, AcceptanceForm())


@customer_page
@require_POST
def settlement_accept(request, token: str):
    """Record the customer's name and the time (settlement_accept logs it as an event)."""
    settlement, _ = shared_settlement(request, token)
    form = AcceptanceForm(request.POST)
    if not form.is_valid():
        return _render_page(request, token, settlement, form, status=400)
    try:
        services.settlement_accept(token=token, name=form.cleaned_data["name"])
    except InvalidInput as error:
        add_service_errors(form, error)
        return _render_page(request, token, settlement, form, status=400)
    except Conflict as error:
        # Already accepted (perhaps from another tab): the page shows who did, and when.
        return _render_page(request, token, settlement, AcceptanceForm(), status=error.status_code, refusal=error)
    # Post/redirect/get: reloading the page must not post the acceptance again.
    return redirect("customer:settlement", token=token)


@customer_page
@require_GET
def attachment_download(request, token: str, attachment_id: int):
    settlement, _ = shared_settlement(request, token)
    attachment = SettlementAttachment.objects.filter(pk=attachment_id, settlement=settlement).first()
    if attachment is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return attachment_response(attachment, inline=False, asgi=served_over_asgi(request))
