"""The template filters every page uses: money and hours in the locale's format, safe Markdown."""

from decimal import Decimal

import pytest
from django.utils import translation

from core.templatetags.ui import decimal, hours, markdown, money


@pytest.mark.parametrize(("language", "expected"), [
    ("en", "1,234,567.50 NOK"), ("pl", "1\xa0234\xa0567,50 NOK"), ("nb", "1\xa0234\xa0567,50 NOK"),
])
def test_money_is_formatted_for_the_locale(language, expected):
    with translation.override(language):
        assert money(Decimal("1234567.5"), "NOK") == expected


def test_hours_and_decimals_round_to_two_places():
    with translation.override("en"):
        assert hours(90) == "1.50"
        assert hours(1) == "0.02"
        assert decimal("12.345") == "12.35"
    with translation.override("pl"):
        assert hours(90) == "1,50"


@pytest.mark.parametrize("value", [None, "", "not a number"])
def test_missing_values_show_a_dash(value):
    assert money(value, "NOK") == "—" and hours(value) == "—"


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    '<img src=x onerror="alert(1)">',
    '<a href="https://example.com" onclick="alert(1)">x</a>',
    "<iframe src='https://example.com'></iframe>",
    "<style>body{display:none}</style>",
])
def test_markdown_strips_active_content(source):
    html = markdown(source).lower()
    for dangerous in ("<script", "javascript:", "onerror", "onclick", "<iframe", "<style", "<img"):
        assert dangerous not in html


def test_markdown_keeps_formatting_and_safe_links():
    html = markdown("**Paid** in _full_\n\n- one\n- two\n\n[docs](https://example.com)")
    assert "<strong>Paid</strong>" in html and "<em>full</em>" in html and "<li>one</li>" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer"' in html
