"""The pages speak one language at a time, and every state of a session reads true (issue 10).

- The message catalogue: every string the code and templates mark has an English translation (none fuzzy).
- The templates: no visible text outside ``_()`` (so nothing Dutch is stuck in the English pages).
- The pages themselves, walked through every state in Dutch and English: no Dutch sentence of the catalogue in
  an English page and no English translation in a Dutch page, apart from what is marked with its own ``lang``
  (Logius' fixed sentence, technical detail).
- The staff actions (Voltooien, Link intrekken, Nieuwe link) and forgiving input over HTTP.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from demo_driver import Citizen, Staff, csrf, demo_app
from zgw_identificatie.app import services_of
from zgw_identificatie.domain.sessions import RegistrationState, SessionReason, SessionState

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "zgw_identificatie"
TEMPLATES = PACKAGE / "web" / "templates"
POT = PACKAGE / "translations" / "messages.pot"
PO = PACKAGE / "translations" / "en" / "LC_MESSAGES" / "messages.po"
BSN = "999993653"


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path, rate_limit_citizen="1000/minute", rate_limit_start="1000/minute")


# --- the catalogue and the templates --------------------------------------------------------------------------


def test_every_marked_string_has_an_english_translation():
    """Run `make translations` after adding strings; then fill in every msgstr."""
    with POT.open("rb") as f:
        template_ids = {m.id for m in read_po(f) if m.id}
    with PO.open("rb") as f:
        catalogue = {m.id: m for m in read_po(f) if m.id}
    missing = sorted(str(i) for i in template_ids if i not in catalogue)
    assert not missing, f"not in the English catalogue (run make translations): {missing[:10]}"
    untranslated = sorted(str(i) for i, m in catalogue.items() if not m.string or m.fuzzy)
    assert not untranslated, f"untranslated or fuzzy: {untranslated[:10]}"


# Text a template may show as it is: names and symbols that are the same in both languages.
LITERALS = {"Nederlands", "English", "BSN", "DigiD", "–", ":", "(", ")", ".", ","}


def _visible_literals(source: str) -> list[str]:
    """Text in a template outside Jinja tags, HTML tags and comments, plus literal human-facing attributes."""
    found = []
    for name in ("alt", "aria-label", "title", "placeholder"):
        for value in re.findall(rf'\s{name}="([^"{{}}]*)"', source):
            if re.search(r"[A-Za-z]", value):
                found.append(value)
    text = re.sub(r"\{#.*?#\}", " ", source, flags=re.S)
    text = re.sub(r"\{%.*?%\}", " ", text, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}", " ", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text, flags=re.S)
    for word in re.split(r"\s+", html.unescape(text)):
        if word and re.search(r"[A-Za-zÀ-ÿ]", word) and word not in LITERALS:
            found.append(word)
    return found


def test_no_template_shows_text_outside_the_translation_function():
    offenders = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        words = _visible_literals(path.read_text(encoding="utf-8"))
        if words:
            offenders[str(path.relative_to(TEMPLATES))] = words[:8]
    assert not offenders, f"untranslatable text in templates: {offenders}"


def test_the_template_check_finds_an_untranslated_word():
    """The check above can fail: a bare word, a bare alt text."""
    assert _visible_literals('<p class="x">Voltooien {{ _("ok") }}</p>') == ["Voltooien"]
    assert _visible_literals('<img alt="QR-code">') == ["QR-code"]
    assert _visible_literals('<p>{{ _("Voltooien") }}</p>{# Nederlands #}') == []


# --- the pages in every state, in both languages ----------------------------------------------------------------


def _catalogue_pairs() -> list[tuple[str, str]]:
    with PO.open("rb") as f:
        return [(str(m.id), str(m.string)) for m in read_po(f) if m.id and m.string and m.id != m.string]


def _chunks(message: str) -> list[str]:
    """The fixed parts of a message (placeholders split it), long enough to be telling (not "Zaak", "BSN")."""
    return [p.strip() for p in re.split(r"%\(\w+\)s", message) if len(p.strip()) >= 18]


def _visible_text(page: str) -> str:
    """The page's text without elements in another language (lang="…" on the element), scripts and tags."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    body = re.sub(r"<html[^>]*>", "<html>", body)
    for _ in range(3):  # elements marked with their own language, innermost first
        body = re.sub(r'<(\w+)[^>]*\slang="\w+"[^>]*>(?:(?!<\1[\s>]).)*?</\1>', " ", body, flags=re.S)
    body = re.sub(r"<[^>]*>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body))


def _assert_one_language(page: str, lang: str, where: str) -> None:
    text = _visible_text(page)
    pairs = _catalogue_pairs()
    if lang == "en":
        wrong = [c for nl, _en in pairs for c in _chunks(nl) if c in text]
    else:
        wrong = [c for _nl, en in pairs for c in _chunks(en) if c in text]
    assert not wrong, f"{where} ({lang}) shows text of the other language: {wrong[:5]}"


def _sessions_in_every_state(app) -> tuple[Staff, dict[str, str]]:
    """One session of the behandelaar per stage the staff page knows, made through the app where it can be."""
    staff = Staff.login(app)
    store = services_of(app).store
    clock = services_of(app).clock
    ids: dict[str, str] = {}
    ids["created"] = staff.start("mutual")
    ids["opened"] = staff.start("new-citizen")
    Citizen.new(app).open(ids["opened"])
    ids["cancelled"] = staff.start("mutual")
    Citizen.new(app).digid(ids["cancelled"], action="annuleren")
    ids["level-too-low"] = staff.start("known-citizen", bsn=BSN)
    Citizen.new(app).digid(ids["level-too-low"], loa="basis")
    for name, reason in (
        ("digid-error", SessionReason.DIGID_ERROR),
        ("expired-during-login", SessionReason.EXPIRED_DURING_LOGIN),
    ):
        ids[name] = staff.start("mutual")
        store.update(store.get(ids[name]).failed(reason, clock.now()))
    ids["match"] = staff.start("known-citizen", bsn=BSN)
    Citizen.new(app).login(ids["match"], bsn=BSN)
    ids["mismatch"] = staff.start("known-citizen", bsn=BSN)
    Citizen.new(app).login(ids["mismatch"], bsn="999990019")
    ids["authenticated"] = staff.start("mutual")
    Citizen.new(app).login(ids["authenticated"], bsn=BSN)
    ids["registering"] = staff.start("mutual")
    Citizen.new(app).login(ids["registering"], bsn=BSN)
    store.update(store.get(ids["registering"]).with_registration(RegistrationState.PENDING))
    ids["registration-failed"] = staff.start("mutual")
    Citizen.new(app).login(ids["registration-failed"], bsn=BSN)
    store.update(
        store.get(ids["registration-failed"]).with_registration(
            RegistrationState.FAILED,
            error="zaak: POST zaken zaken answered 403 invalid-jwt-signature: Invalid signature",
        )
    )
    ids["registered"] = staff.start("mutual")
    Citizen.new(app).login(ids["registered"], bsn=BSN)
    store.update(store.get(ids["registered"]).with_registration(RegistrationState.DONE, zaak_identificatie="ZAAK-1"))
    ids["withdrawn"] = staff.start("mutual")
    store.update(store.get(ids["withdrawn"]).withdrawn(clock.now()))
    ids["completed"] = staff.start("known-citizen", bsn=BSN)
    Citizen.new(app).login(ids["completed"], bsn=BSN)
    store.update(store.get(ids["completed"]).completed())
    ids["expired"] = staff.start("mutual")
    expired = store.get(ids["expired"])
    store.update(replace(expired, expires_at=clock.now() - timedelta(seconds=1)))
    return staff, ids


EXPECTED_NL = {
    "created": ("Link gemaakt, nog niet geopend", ["Link intrekken"]),
    "opened": ("Link geopend", ["Link intrekken"]),
    "cancelled": ("Inloggen gestopt door de inwoner", ["Link intrekken"]),
    "level-too-low": ("Inloggen mislukt: DigiD-niveau te laag", ["Nieuwe link"]),
    "digid-error": ("Inloggen mislukt: fout bij DigiD", ["Nieuwe link"]),
    "expired-during-login": ("Inloggen mislukt: link verlopen tijdens het inloggen", ["Nieuwe link"]),
    "match": ("Ingelogd: de codes zijn gelijk", ["Voltooien"]),
    "mismatch": ("Ingelogd: de codes zijn NIET gelijk", ["Voltooien", "Nieuwe link"]),
    "authenticated": ("Ingelogd met DigiD", ["Voltooien"]),
    "registering": ("Ingelogd, bewijs wordt vastgelegd", ["Voltooien"]),
    "registration-failed": ("Ingelogd, vastleggen mislukt", ["Voltooien"]),
    "registered": ("Ingelogd en vastgelegd", ["Voltooien"]),
    "withdrawn": ("Link ingetrokken", ["Nieuwe link"]),
    "completed": ("Afgerond", []),
    "expired": ("Verlopen", ["Nieuwe link"]),
}
ACTIONS = ("Voltooien", "Link intrekken", "Nieuwe link")


def _title(page: str) -> str:
    match = re.search(r'data-field="progress">([^<]*)<', page)
    assert match, page[:2000]
    return html.unescape(match.group(1)).strip()


def _actions(page: str) -> list[str]:
    block = page.split('id="actions"', 1)[1].split("</section>", 1)[0]
    return [a for a in re.findall(r">([^<>]+)</(?:button|a)>", block) if a in ACTIONS]


def test_every_state_has_its_title_its_next_step_and_its_actions_and_the_overview_agrees(app):
    staff, ids = _sessions_in_every_state(app)
    overview = staff.client.get("/staff/").text
    for name, sid in ids.items():
        title, actions = EXPECTED_NL[name]
        page = staff.client.get(f"/staff/sessions/{sid}")
        assert page.status_code == 200, (name, page.status_code)
        assert _title(page.text) == title, name
        assert 'data-field="next"><strong>Wat nu?</strong>' in page.text, name
        assert _actions(page.text) == actions, (name, _actions(page.text))
        fragment = staff.client.get(f"/staff/sessions/{sid}/status.html").text
        assert _title(fragment) == title, name  # the live block says the same
        row = re.search(rf'href="/staff/sessions/{sid}".*?</tr>', overview, re.S)
        assert row and f">{html.escape(title, quote=False)}</td>" in row.group(0), name
        usable = name in ("created", "opened", "cancelled")
        assert ("data-link-section hidden" not in page.text) == usable, name  # a dead link is not shown
        _assert_one_language(page.text, "nl", f"staff {name}")
    failed = staff.client.get(f"/staff/sessions/{ids['registration-failed']}").text
    assert "Het zaaksysteem weigert de toegang." in failed and "<details" in failed
    assert failed.index("Het zaaksysteem weigert") < failed.index("invalid-jwt-signature")  # detail comes folded


def test_every_state_in_english_has_no_dutch(app):
    staff, ids = _sessions_in_every_state(app)
    staff.client.get("/taal/en")
    _assert_one_language(staff.client.get("/staff/").text, "en", "staff overview")
    for name, sid in ids.items():
        page = staff.client.get(f"/staff/sessions/{sid}").text
        assert '<html lang="en"' in page
        _assert_one_language(page, "en", f"staff {name}")
    assert "Login failed: DigiD level too low" in staff.client.get(f"/staff/sessions/{ids['level-too-low']}").text


def test_the_one_language_check_can_fail():
    with pytest.raises(AssertionError):
        _assert_one_language("<html lang='en'><p>De inwoner heeft de link nog niet geopend.</p>", "en", "x")
    with pytest.raises(AssertionError):
        _assert_one_language("<html><p>The citizen has not opened the link yet.</p>", "nl", "x")
    _assert_one_language('<html><p lang="nl">De inwoner heeft de link nog niet geopend.</p>', "en", "x")


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_citizen_pages_for_a_dead_link_are_true_and_end_with_what_to_do(app, lang):
    _staff, ids = _sessions_in_every_state(app)
    expected = {
        "level-too-low": (
            409,
            "Uw DigiD-niveau is te laag voor dit gesprek",
            "Your DigiD level is too low for this call",
        ),
        "digid-error": (409, "Inloggen met deze link is niet gelukt", "Logging in with this link did not work"),
        "expired-during-login": (410, "Deze link is verlopen", "This link has expired"),
        "withdrawn": (409, "Deze link is ingetrokken", "This link has been withdrawn"),
        "completed": (409, "Deze identificatie is afgerond", "This identification is finished"),
        "match": (409, "Deze link is al gebruikt", "This link has already been used"),
        "expired": (410, "Deze link is verlopen", "This link has expired"),
    }
    for name, (status, nl, en) in expected.items():
        citizen = Citizen.new(app)
        if lang == "en":
            citizen.client.get("/taal/en")
        page = citizen.open(ids[name])
        assert page.status_code == status, (name, page.status_code)
        assert f'<h1 class="utrecht-heading-1">{nl if lang == "nl" else en}</h1>' in page.text, name
        next_step = re.search(r"data-next-step><strong>([^<]*)</strong>", page.text)
        assert next_step, name
        assert ("medewerker in het videogesprek" if lang == "nl" else "staff member in the video call") in (
            html.unescape(next_step.group(1))
        ), name
        assert "Met deze link is al ingelogd" not in page.text or name == "match", name
        _assert_one_language(page.text, lang, f"citizen {name}")
    too_low = Citizen.new(app).open(ids["level-too-low"]).text
    assert "Voor dit gesprek is DigiD met het niveau Midden nodig." in too_low


# --- the actions and the input ------------------------------------------------------------------------------


def _post(staff: Staff, sid: str, action: str, **data: str):
    page = staff.client.get(f"/staff/sessions/{sid}")
    return staff.client.post(f"/staff/sessions/{sid}/{action}", data={"csrf_token": csrf(page.text), **data})


def test_link_intrekken_keeps_the_page_with_a_confirmation_and_kills_the_link(app):
    staff = Staff.login(app)
    sid = staff.start("new-citizen")
    resp = _post(staff, sid, "intrekken")
    assert resp.status_code == 303 and resp.location.endswith(f"/staff/sessions/{sid}")
    page = staff.client.get(f"/staff/sessions/{sid}").text
    assert "De link is ingetrokken. De inwoner kan er niet meer mee inloggen." in page
    assert _title(page) == "Link ingetrokken"
    assert "De link is ingetrokken." not in staff.client.get(f"/staff/sessions/{sid}").text  # shown once
    assert services_of(app).store.get(sid).state is SessionState.WITHDRAWN
    assert Citizen.new(app).open(sid).status_code == 409


def test_voltooien_confirms_on_the_overview(app):
    staff = Staff.login(app)
    sid = staff.start("known-citizen", bsn=BSN)
    Citizen.new(app).login(sid, bsn=BSN)
    resp = _post(staff, sid, "voltooien")
    assert resp.status_code == 303 and resp.location.endswith("/staff/")
    assert "Afgerond. De identificatie van" in staff.client.get("/staff/").text
    mutual = staff.start("mutual")
    Citizen.new(app).login(mutual, bsn=BSN)
    _post(staff, mutual, "voltooien")
    overview = staff.client.get("/staff/").text
    assert "Het BSN en de andere gegevens van deze sessie zijn gewist." in overview and BSN not in overview


def test_nieuwe_link_keeps_flow_zaak_and_level_and_withdraws_a_still_working_link(app):
    staff = Staff.login(app)
    store = services_of(app).store
    zaak = app.blueprints["sandbox"].sandbox.add_zaak()["identificatie"]
    sid = staff.start("mutual", zaak=f"  {zaak}  ")
    old = store.get(sid)
    assert old.zaak_identificatie == zaak and old.register  # trimmed
    resp = _post(staff, sid, "nieuwe-link")
    assert resp.status_code == 303
    new_id = resp.location.rsplit("/", 1)[-1]
    new = store.get(new_id)
    assert new_id != sid and new.flow is old.flow and new.zaak_identificatie == zaak
    assert new.min_level == old.min_level and new.register
    assert store.get(sid).state is SessionState.WITHDRAWN  # one live link at a time
    assert "Er is een nieuwe link gemaakt." in staff.client.get(resp.location).text


def test_nieuwe_link_for_a_known_citizen_asks_the_bsn_again_and_forgives_spaces(app):
    staff = Staff.login(app)
    store = services_of(app).store
    sid = staff.start("known-citizen", bsn=BSN)
    store.update(store.get(sid).failed(SessionReason.DIGID_ERROR, services_of(app).clock.now()))
    form = staff.client.get(f"/staff/sessions/{sid}/nieuwe-link")
    assert form.status_code == 200 and 'name="bsn"' in form.text and 'maxlength="9"' not in form.text
    bad = staff.client.post(
        f"/staff/sessions/{sid}/nieuwe-link", data={"csrf_token": csrf(form.text), "bsn": "123 456 789"}
    )
    assert bad.status_code == 400 and "Dit is geen geldig burgerservicenummer" in bad.text
    assert "123 456 789" not in bad.text  # never echoed
    good = staff.client.post(
        f"/staff/sessions/{sid}/nieuwe-link", data={"csrf_token": csrf(form.text), "bsn": "999 993 653"}
    )
    assert good.status_code == 303
    new = store.get(good.location.rsplit("/", 1)[-1])
    assert new.flow.value == "known-citizen" and new.expected_code and new.id != sid
    assert store.get(sid).state is SessionState.FAILED  # a dead link stays what it was


@pytest.mark.parametrize("typed", ["999 993 653", "999.993.653", "999-993-653", " 999993653 ", "999\u00a0993\u00a0653"])
def test_the_bsn_field_accepts_spaces_dots_and_dashes(app, typed):
    staff = Staff.login(app)
    page = staff.client.get("/staff/")
    assert 'maxlength="9"' not in page.text  # a pasted "999 993 653" is not cut
    resp = staff.client.post(
        "/staff/sessions", data={"csrf_token": csrf(page.text), "flow": "known-citizen", "bsn": typed}
    )
    assert resp.status_code == 303, resp.text[:300]


def test_the_bsn_field_still_refuses_letters_and_wrong_numbers(app):
    staff = Staff.login(app)
    for typed in ("999 993 65a", "999 993 654", "9999 93 6530"):
        page = staff.client.get("/staff/")
        resp = staff.client.post(
            "/staff/sessions", data={"csrf_token": csrf(page.text), "flow": "known-citizen", "bsn": typed}
        )
        assert resp.status_code == 400, typed


def test_the_favicon_is_served_and_follows_the_setting(tmp_path):
    app = demo_app(tmp_path)
    resp = app.test_client().get("/favicon.ico")
    assert resp.status_code == 200 and resp.mimetype == "image/vnd.microsoft.icon" and resp.data[:4] == b"\0\0\1\0"
    assert "max-age=86400" in resp.headers["Cache-Control"]  # browsers ask for it on every page: let them keep it
    login = app.test_client().get("/staff/login")
    assert login.headers["Cache-Control"] == "no-store"  # pages are never kept
    page = login.text
    assert '<link rel="icon" href="/static/favicon.svg"' in page
    svg = app.test_client().get("/static/favicon.svg")
    svg.close()
    assert svg.status_code == 200
    own = demo_app(tmp_path / "own", favicon_url="https://www.gemeente.example/favicon.ico")
    resp = own.test_client().get("/favicon.ico")
    assert resp.status_code == 302 and resp.location == "https://www.gemeente.example/favicon.ico"
    page = own.test_client().get("/staff/login")
    assert '<link rel="icon" href="https://www.gemeente.example/favicon.ico"' in page.text
    assert "https://www.gemeente.example" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("flow", ["known-citizen", "mutual", "new-citizen"])
def test_voltooien_after_the_sessions_time_ran_out_finishes_it_and_erases_the_bsn(app, flow):
    """The session lives 15 minutes from the link; a behandelaar who clicks Voltooien at minute 16 of the call
    still saw the login (and the button): the click finishes it and erases the BSN now. Before, it answered
    409 "Er ging iets mis. Probeer het later opnieuw.", which no retry would change."""
    staff = Staff.login(app)
    store = services_of(app).store
    clock = services_of(app).clock
    sid = staff.start(flow, bsn=BSN) if flow == "known-citizen" else staff.start(flow)
    Citizen.new(app).login(sid, bsn=BSN)
    store.update(replace(store.get(sid), expires_at=clock.now() - timedelta(seconds=1)))
    page = staff.client.get(f"/staff/sessions/{sid}").text
    assert "Voltooien" in _actions(page)  # the login is still on the page until the purge

    resp = _post(staff, sid, "voltooien")
    assert resp.status_code == 303 and resp.location.endswith("/staff/"), resp.status_code
    overview = staff.client.get("/staff/").text
    assert "Afgerond." in overview and "Er ging iets mis" not in overview
    left = store.get(sid)
    assert left is None or (left.state is SessionState.COMPLETED and left.bsn is None)
    assert BSN not in overview


def test_an_action_on_a_session_the_purge_erased_meanwhile_says_so_on_the_overview(app):
    staff = Staff.login(app)
    store = services_of(app).store
    sid = staff.start("mutual")
    page = staff.client.get(f"/staff/sessions/{sid}").text
    assert store.delete(sid)  # what the purge does to an expired session
    for action in ("voltooien", "intrekken", "nieuwe-link", "registration/retry", "code-bevestiging"):
        form = {"csrf_token": csrf(page), "uitkomst": "klopt"}
        resp = staff.client.post(f"/staff/sessions/{sid}/{action}", data=form)
        assert resp.status_code == 303 and resp.location.endswith("/staff/"), (action, resp.status_code)
        assert "Deze sessie bestaat niet meer." in staff.client.get("/staff/").text, action
