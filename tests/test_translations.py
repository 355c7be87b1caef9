"""Spanish and German are complete, compiled, and what the pages and scripts show."""
from pathlib import Path

import polib
import pytest
from django.utils import translation

LOCALE = Path(__file__).resolve().parent.parent / "locale"
CATALOGS = [(lang, domain) for lang in ("es", "de") for domain in ("django", "djangojs")]


@pytest.mark.parametrize("lang,domain", CATALOGS)
def test_every_string_is_translated_and_none_is_fuzzy(lang, domain):
    po = polib.pofile(str(LOCALE / lang / "LC_MESSAGES" / f"{domain}.po"))
    assert len(po) > 50
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []


@pytest.mark.parametrize("lang,domain", CATALOGS)
def test_the_compiled_catalog_matches_the_source(lang, domain):
    folder = LOCALE / lang / "LC_MESSAGES"
    # Keyed with the context too: "Recording" (a noun) and "Recording" (happening now) differ.
    po = {(e.msgctxt, e.msgid): e.msgstr for e in polib.pofile(str(folder / f"{domain}.po")) if not e.obsolete}
    mo = {(e.msgctxt, e.msgid): e.msgstr for e in polib.mofile(str(folder / f"{domain}.mo")) if e.msgid}
    assert mo == po, "run `manage.py compilemessages` after editing the .po files"


@pytest.mark.parametrize("lang,domain", CATALOGS)
def test_placeholders_survive_translation(lang, domain):
    import re

    placeholder = re.compile(r"%\(\w+\)s")
    for entry in polib.pofile(str(LOCALE / lang / "LC_MESSAGES" / f"{domain}.po")):
        # A plural entry ("%(n)s turn"/"%(n)s turns") has one translation per plural form instead.
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for translation_ in translations:
            assert sorted(placeholder.findall(entry.msgid)) == sorted(placeholder.findall(translation_)), entry.msgid


@pytest.mark.django_db
@pytest.mark.parametrize("lang,expected", [("es", "Empezar"), ("de", "Starten")])
def test_the_talk_page_follows_the_browsers_language(client, user, lang, expected):
    client.force_login(user)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=f"{lang},en;q=0.5")
    assert f'<html lang="{lang}">' in response.content.decode()
    assert expected in response.content.decode()


@pytest.mark.django_db
def test_the_language_switcher_sets_the_language(client, user):
    client.force_login(user)
    client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    assert 'lang="de"' in client.get("/").content.decode()


@pytest.mark.django_db
def test_the_javascript_catalog_is_public_and_translated(client):
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 200
    with translation.override("es"):
        assert translation.gettext("Start") == "Empezar"
    assert "Asistente" in response.content.decode()
