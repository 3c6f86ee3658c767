"""The Polish and Norwegian catalogues: complete, compiled, and covering the templates.

The compiled .mo files are committed (a fresh machine needs no gettext tools to serve them);
these tests catch a catalogue that was edited but not compiled, an untranslated or fuzzy entry,
and a template string that never made it into the catalogue (`make messages` refreshes both)."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

LANGUAGES = ["pl", "nb"]
LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
TEMPLATE_DIR = Path(settings.BASE_DIR) / "templates"
# {% translate "..." %} / {% trans '...' %} with a literal (not a variable).
TRANSLATE_TAG = re.compile(r"""{%\s*(?:translate|trans)\s+(["'])(.+?)\1(?:\s+[^%]*)?%}""")


def _unquote(line: str) -> str:
    return ast.literal_eval(line)


def parse_po(path: Path) -> list[dict]:
    """Entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (list), flags."""
    entries, entry, key = [], None, None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry, key = None, None
            continue
        entry = entry if entry is not None else {"flags": set(), "msgctxt": None, "msgid": "",
                                                 "msgid_plural": None, "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            _append(entry, key, _unquote(line))
        else:
            key, _, value = line.partition(" ")
            if key.startswith("msgstr["):
                entry["msgstr"][int(key[7:-1])] = _unquote(value)
            elif key == "msgstr":
                entry["msgstr"][0] = _unquote(value)
            else:
                entry[key] = _unquote(value)
    return [e for e in entries if e["msgid"]]  # the header has an empty msgid


def _append(entry: dict, key: str, text: str) -> None:
    if key == "msgstr":
        entry["msgstr"][0] += text
    elif key and key.startswith("msgstr["):
        entry["msgstr"][int(key[7:-1])] += text
    else:
        entry[key] += text


def catalogue(language: str) -> list[dict]:
    return parse_po(LOCALE_DIR / language / "LC_MESSAGES" / "django.po")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_not_fuzzy(language):
    missing = [e["msgid"] for e in catalogue(language)
               if "fuzzy" in e["flags"] or not all(e["msgstr"].values()) or not e["msgstr"]]
    assert missing == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_the_source(language):
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in catalogue(language):
        if entry["msgid_plural"] is not None:
            got = compiled.npgettext(entry["msgctxt"], entry["msgid"], entry["msgid_plural"], 1) \
                if entry["msgctxt"] else compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1)
        elif entry["msgctxt"]:
            got = compiled.pgettext(entry["msgctxt"], entry["msgid"])
        else:
            got = compiled.gettext(entry["msgid"])
        if got != entry["msgstr"][0]:
            stale.append(entry["msgid"])
    assert stale == [], "run `make messages` to compile the catalogues"


@pytest.mark.parametrize("language", LANGUAGES)
def test_template_strings_are_in_the_catalogue(language):
    known = {e["msgid"] for e in catalogue(language)}
    # makemessages stores a literal % of a template string as %% (python-format escaping).
    used = {match.group(2).replace("%", "%%") for path in TEMPLATE_DIR.rglob("*.html")
            for match in TRANSLATE_TAG.finditer(path.read_text(encoding="utf-8"))}
    assert sorted(used - known) == [], "run `make messages` and translate the new strings"


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="en")
@pytest.mark.parametrize(("language", "projects", "log_out"),
                         [("pl", "Projekty", "Wyloguj"), ("nb", "Prosjekter", "Logg ut")])
def test_navigation_is_translated(client, django_user_model, language, projects, log_out):
    user = django_user_model.objects.create_user("reader", password="a-long-password-1")
    client.force_login(user)
    client.post(reverse("set_language"), {"language": language, "next": "/dashboard/"})
    body = client.get(reverse("dashboard")).content.decode()
    assert f'lang="{language}"' in body
    assert projects in body and log_out in body
    translation.activate("en")
