"""Template helpers of the dashboard and the customer page: money and hours formatted for the
active locale, and Markdown rendered safely."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import markdown as markdown_lib
import nh3
from django import template
from django.utils.formats import number_format
from django.utils.safestring import mark_safe

register = template.Library()

# Tags a settlement note may keep after rendering; everything else (scripts, styles, event
# handlers, iframes) is stripped by nh3, and links get rel="noopener noreferrer".
MARKDOWN_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2", "h3",
                 "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td"}
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}}
MARKDOWN_URL_SCHEMES = {"http", "https", "mailto"}


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _localized(amount: Decimal, places: int) -> str:
    # Django's number_format cuts extra digits off; round half-up first, as the money rules say.
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return number_format(rounded, places, use_l10n=True, force_grouping=True)


@register.filter
def money(value, currency: str = "") -> str:
    """`1234.5|money:"NOK"` → `1,234.50 NOK` in English, `1 234,50 NOK` in Polish or Norwegian."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    formatted = _localized(amount, 2)
    return f"{formatted} {currency}".strip()


@register.filter
def hours(minutes) -> str:
    """Minutes shown as decimal hours with two places, in the locale's format."""
    amount = _decimal(minutes)
    if amount is None:
        return "—"
    return _localized(amount / 60, 2)


@register.filter
def decimal(value, places: int = 2) -> str:
    amount = _decimal(value)
    if amount is None:
        return "—"
    return _localized(amount, int(places))


@register.filter
def markdown(text: str) -> str:
    """Markdown → sanitised HTML; raw HTML in the source is escaped or stripped, never trusted."""
    html = markdown_lib.markdown(text or "", extensions=["tables", "sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html, tags=MARKDOWN_TAGS, attributes=MARKDOWN_ATTRIBUTES,
                               url_schemes=MARKDOWN_URL_SCHEMES, link_rel="noopener noreferrer"))


@register.filter
def percent(value) -> str:
    amount = _decimal(value)
    if amount is None:
        return "—"
    return f"{_localized(amount, 0)} %"
