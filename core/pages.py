"""Shared plumbing of the dashboard pages: service refusals shown as pages (or HTMX fragments)
with the service's status and code, form errors from InvalidInput, pagination with filters kept.

Every page view calls the same services as the API; this module only turns their answers into
HTML. A refusal keeps its HTTP status (403, 404, 409, 413…) and carries its machine-readable code
in the `X-Error-Code` header as well as on the page."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from core.errors import InvalidInput, ServiceError

DEFAULT_PAGE_SIZE = 25
REFUSAL_TEMPLATE = "dashboard/refusal.html"
REFUSAL_FRAGMENT = "dashboard/partials/refusal.html"


def refusal_response(request, error: ServiceError) -> HttpResponse:
    """A service refusal as HTML: a fragment for HTMX requests (swapped into the page's message
    area), a whole page otherwise."""
    template = REFUSAL_FRAGMENT if getattr(request, "htmx", False) else REFUSAL_TEMPLATE
    response = render(request, template, {"error": error}, status=error.status_code)
    response["X-Error-Code"] = error.code
    if getattr(request, "htmx", False):
        # Refusals of HTMX actions go to the page's message area, whatever the element targeted.
        response["HX-Retarget"] = "#messages"
        response["HX-Reswap"] = "innerHTML"
    return response


def handles_refusals(view):
    """Turn a ServiceError raised anywhere in `view` into a refusal page with its status."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ServiceError as error:
            return refusal_response(request, error)

    return wrapper


def post_action(view):
    """A dashboard action: logged-in users only, POST only, service refusals shown as pages."""
    return login_required(require_POST(handles_refusals(view)))


def add_service_errors(form, error: InvalidInput) -> None:
    """Put a service's per-field errors on the form (fields it does not have go to the top)."""
    for field, messages in (error.errors or {None: [{"message": error.message}]}).items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message["message"] if isinstance(message, dict) else str(message))


def request_value(request, name: str) -> str:
    """A posted (else query) parameter read outside a form. One containing a NUL byte counts as
    absent: PostgreSQL cannot compare it, and url-encoded posts never get here with one
    (core.middleware refuses them), but multipart posts from scripts can."""
    value = request.POST.get(name) or request.GET.get(name) or ""
    return "" if "\x00" in value else value


def paginate(request, queryset, *, per_page: int = DEFAULT_PAGE_SIZE):
    """The requested page of `queryset`; an out-of-range or malformed page number gives the
    nearest valid page rather than an error, as people type page numbers into URLs."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def invalid_form_response(request, template: str, context: dict) -> HttpResponse:
    """Re-render a form page with its errors, answering 400 so scripts and tests can tell."""
    response = render(request, template, context, status=400)
    response["X-Error-Code"] = "invalid"
    return response
