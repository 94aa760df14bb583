"""The three flows of the VNG guide in a real browser, as a behandelaar and a citizen would do them.

Two browser contexts per test: the behandelaar on a desktop, the citizen on a phone-sized screen. Every page
passed is checked with axe-core (WCAG 2.2 AA, zero violations) and saved as a screenshot. One citizen walks
the whole flow by keyboard alone; one does it without JavaScript; one in English.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from browser_support import (
    PHONE,
    STAFF_NAME,
    STAFF_PASSWORD,
    STAFF_USER,
    Browsers,
    DemoServer,
    check_page,
    save_screenshot,
)
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

BSN = "999993653"
OTHER_BSN = "999990019"
CODE = re.compile(r"^\d{3} \d{3}$")


# --- the behandelaar ---------------------------------------------------------------------------------------


def staff_login(page: Page, *, check: bool = False) -> None:
    page.goto("/staff/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inloggen medewerker")
    if check:
        check_page(page, "staff-login")
    page.get_by_label("Gebruikersnaam").fill(STAFF_USER)
    page.get_by_label("Wachtwoord").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Inloggen", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Identificatie tijdens videogesprek")


def flow_card(page: Page, heading: str) -> Locator:
    return page.locator("section").filter(has=page.get_by_role("heading", level=2, name=heading, exact=True))


def staff_start(page: Page, heading: str, *, bsn: str | None = None) -> str:
    """Fill in the card of one flow, press 'Link maken'; returns the citizen link from the session page."""
    card = flow_card(page, heading)
    if bsn is not None:
        card.get_by_label("Burgerservicenummer (BSN)").fill(bsn)
    card.get_by_role("button", name=re.compile("^Link maken")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.get_by_role("img", name="QR-code met de link voor de inwoner")).to_be_visible()
    link = page.get_by_label("Link", exact=True).input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/i/[\w-]+", link), link
    return link


def visible_code(page: Page) -> str:
    code = page.locator("[data-code]").first
    expect(code).to_have_text(CODE)
    return code.inner_text()


def spoken_code(page: Page) -> str:
    """What a screen reader reads: the visually hidden digits, one by one."""
    return page.locator(".zgwid-code-row .zgwid-visually-hidden").first.inner_text()


def expect_status(page: Page, text: str | re.Pattern[str]) -> None:
    """The live status block (fetched every second by staff.js) reaches the given text."""
    expect(page.locator('#status [data-field="progress"]')).to_have_text(text, timeout=15_000)


# --- the citizen -------------------------------------------------------------------------------------------


def digid_simulator(page: Page, *, bsn: str, loa: str = "midden", check_as: str | None = None) -> None:
    """At the DigiD simulator: type the BSN, choose the level, press Inloggen."""
    expect(page.get_by_role("heading", level=1)).to_have_text("DigiD-simulator")
    if check_as:
        check_page(page, check_as)
    page.get_by_label("Burgerservicenummer").fill(bsn)
    page.get_by_label("Betrouwbaarheidsniveau").select_option(loa)
    page.get_by_role("button", name="Inloggen", exact=True).click()


def tab_to(page: Page, name: str | re.Pattern[str], *, limit: int = 40) -> None:
    """Press Tab until the focused element has this accessible name (as a keyboard user would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate(
            """() => { const el = document.activeElement; if (!el) return "";
                 const own = el.labels && el.labels.length ? el.labels[0].innerText : "";
                 return (own || el.getAttribute("aria-label") || el.innerText || el.value || "").trim(); }"""
        )
        if name.search(label) if isinstance(name, re.Pattern) else label == name:
            focused = page.locator(":focus")
            outline = focused.evaluate("el => getComputedStyle(el).outlineStyle")
            assert outline != "none", f"{name!r} has focus but no visible focus indicator"
            return
    raise AssertionError(f"{name!r} cannot be reached with the Tab key")


# --- §2.1 ------------------------------------------------------------------------------------------------


def test_new_citizen_logs_in_reads_a_random_code_and_both_see_the_new_zaak(browsers: Browsers) -> None:
    """§2.1: staff make a link; the citizen logs in at DigiD; both see the same code and the new zaaknummer."""
    staff = browsers.open()
    staff_login(staff, check=True)
    check_page(staff, "staff-overview")
    link = staff_start(staff, "Inwoner nog niet bekend")
    check_page(staff, "staff-new-citizen-link")

    staff.get_by_role("button", name="Kopieer link").click()
    expect(staff.get_by_text("De link is gekopieerd.")).to_be_visible()
    assert staff.evaluate("() => navigator.clipboard.readText()") == link

    citizen = browsers.open(viewport=PHONE)
    citizen.goto(link)
    expect(citizen.locator("[data-requester]")).to_have_text("Gemeente Voorbeeld vraagt u in te loggen met DigiD.")
    check_page(citizen, "citizen-new-citizen-start")
    citizen.get_by_role("button", name="Inloggen met DigiD").click()
    digid_simulator(citizen, bsn=BSN, check_as="digid-simulator")

    expect(citizen.get_by_role("heading", level=1)).to_have_text("U bent ingelogd met DigiD")
    code = visible_code(citizen)
    assert spoken_code(citizen) == "Controlecode: " + " ".join(code.replace(" ", ""))
    zaak = citizen.locator("[data-zaak]")
    expect(zaak).to_be_visible(timeout=15_000)  # live.js swaps it in once the worker made the zaak
    check_page(citizen, "citizen-new-citizen-result")

    expect(staff.locator('#status [data-field="zaak"]')).to_have_text(zaak.inner_text(), timeout=15_000)
    expect_status(staff, "Ingelogd en vastgelegd")
    assert visible_code(staff) == code
    check_page(staff, "staff-new-citizen-done")

    # §2.1 steps 8–9: the citizen read the code aloud; the behandelaar confirms it, the worker puts it on the zaak
    staff.get_by_role("button", name="Code klopt", exact=True).click()
    expect(staff.locator('[data-field="confirmation"]')).to_contain_text("Uw oordeel: de code klopt.")
    expect(staff.locator('[data-field="confirmation"]')).to_contain_text("Staat in de zaak.", timeout=15_000)
    check_page(staff, "staff-new-citizen-confirmed")

    staff.get_by_role("button", name="Voltooien").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("Identificatie tijdens videogesprek")
    expect(staff.get_by_role("table")).to_contain_text(zaak.inner_text())
    citizen.get_by_role("button", name="Uitloggen").click()
    expect(citizen.get_by_role("heading", level=1)).to_have_text("U bent uitgelogd")
    check_page(citizen, "citizen-logged-out")


# --- §2.2, by keyboard ------------------------------------------------------------------------------------


def test_known_citizen_does_the_whole_login_by_keyboard_and_both_see_the_same_code(browsers: Browsers) -> None:
    """§2.2: staff enter the BSN; the citizen uses only the keyboard; the codes match and the page says so."""
    staff = browsers.open()
    staff_login(staff)
    flow_card(staff, "Inwoner bekend").get_by_label("Burgerservicenummer (BSN)").fill("123456789")
    flow_card(staff, "Inwoner bekend").get_by_role("button", name=re.compile("^Link maken")).click()
    bsn_field = staff.get_by_label("Burgerservicenummer (BSN)")
    expect(bsn_field).to_have_attribute("aria-invalid", "true")
    expect(staff.get_by_text("Dit is geen geldig burgerservicenummer.", exact=False)).to_be_visible()
    expect(bsn_field).to_have_value("")  # a BSN is never echoed back into a page
    check_page(staff, "staff-bsn-error")

    link = staff_start(staff, "Inwoner bekend", bsn=BSN)
    staff_code = visible_code(staff)
    assert spoken_code(staff) == "Controlecode: " + " ".join(staff_code.replace(" ", ""))
    check_page(staff, "staff-known-citizen-link")

    citizen = browsers.open(viewport=PHONE)
    citizen.goto(link)
    check_page(citizen, "citizen-known-citizen-start")
    tab_to(citizen, "Direct naar de inhoud")
    tab_to(citizen, "Inloggen met DigiD")
    citizen.keyboard.press("Enter")
    expect(citizen.get_by_role("heading", level=1)).to_have_text("DigiD-simulator")
    tab_to(citizen, "Burgerservicenummer")
    citizen.keyboard.type(BSN)
    tab_to(citizen, "Inloggen")
    citizen.keyboard.press("Enter")

    expect(citizen.get_by_role("heading", level=1)).to_have_text("U bent ingelogd met DigiD")
    assert visible_code(citizen) == staff_code
    check_page(citizen, "citizen-known-citizen-result")
    tab_to(citizen, "Uitloggen")

    expect_status(staff, "Ingelogd: de codes zijn gelijk")
    expect(staff.get_by_role("button", name="Voltooien")).to_be_visible()
    check_page(staff, "staff-known-citizen-match")


def test_known_citizen_with_another_bsn_sees_another_code_and_staff_see_no_match(browsers: Browsers) -> None:
    """§2.2 with a different person at DigiD: different codes, and the status says they are NOT equal."""
    staff = browsers.open()
    staff_login(staff)
    link = staff_start(staff, "Inwoner bekend", bsn=BSN)
    staff_code = visible_code(staff)
    citizen = browsers.open(viewport=PHONE)
    citizen.goto(link)
    citizen.get_by_role("button", name="Inloggen met DigiD").click()
    digid_simulator(citizen, bsn=OTHER_BSN)
    assert visible_code(citizen) != staff_code
    expect_status(staff, "Ingelogd: de codes zijn NIET gelijk")
    check_page(staff, "staff-known-citizen-mismatch")


# --- §2.3, in English -----------------------------------------------------------------------------------


def test_mutual_citizen_in_english_sees_the_staff_name_and_staff_see_the_bsn_until_voltooien(
    browsers: Browsers,
) -> None:
    """§2.3: the citizen (browser in English) sees who asks; staff see the BSN; Voltooien erases it."""
    staff = browsers.open()
    staff_login(staff)
    link = staff_start(staff, "Wederzijdse zekerheid")
    check_page(staff, "staff-mutual-link")

    citizen = browsers.open(viewport=PHONE, locale="en-GB")
    citizen.goto(link)
    expect(citizen.locator("html")).to_have_attribute("lang", "en")
    expect(citizen.locator("[data-requester]")).to_have_text(
        f"{STAFF_NAME} of Gemeente Voorbeeld asks you to log in with DigiD."
    )
    check_page(citizen, "citizen-mutual-start-en")
    citizen.get_by_role("button", name="Log in with DigiD").click()
    digid_simulator(citizen, bsn=BSN, loa="substantieel")
    expect(citizen.get_by_role("heading", level=1)).to_have_text("You are logged in with DigiD")
    knows = citizen.get_by_text(f"{STAFF_NAME} of Gemeente Voorbeeld now knows who you are.", exact=False)
    expect(knows).to_be_visible()
    assert BSN not in citizen.content()
    check_page(citizen, "citizen-mutual-result-en")

    expect(staff.locator("#status [data-bsn]")).to_have_text(BSN, timeout=15_000)
    spoken_bsn = staff.locator('#status [data-field="bsn"] .zgwid-visually-hidden').inner_text()
    assert spoken_bsn == " ".join(BSN)  # a screen reader reads the digits, not "999 million …"
    expect(staff.locator('#status [data-field="level"]')).to_have_text("Substantieel")
    session_url = staff.url
    check_page(staff, "staff-mutual-bsn")
    staff.get_by_role("button", name="Voltooien").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("Identificatie tijdens videogesprek")
    assert BSN not in staff.content()
    staff.goto(session_url)  # the tombstone: completed, without the BSN, until the session expires
    expect(staff.locator("#status [data-state]")).to_have_attribute("data-state", "completed")
    assert BSN not in staff.content()
    check_page(staff, "staff-session-completed")

    citizen.reload()
    expect(citizen.get_by_role("heading", level=1)).to_have_text("Finished")

    citizen.get_by_role("link", name="Nederlands").click()
    expect(citizen.locator("html")).to_have_attribute("lang", "nl")
    expect(citizen.get_by_role("heading", level=1)).to_have_text("Afgerond")


# --- the citizen's other pages --------------------------------------------------------------------------


def test_citizen_can_cancel_at_digid_and_try_again_when_the_page_does_not_move_on_by_itself(
    browsers: Browsers,
) -> None:
    """The DigiD hand-off page has its own button; a cancel at DigiD returns to the start page with a message."""
    staff = browsers.open()
    staff_login(staff)
    link = staff_start(staff, "Inwoner bekend", bsn=BSN)
    citizen = browsers.open(viewport=PHONE)
    citizen.route("**/static/autosubmit.js", lambda route: route.abort())
    citizen.goto(link)
    citizen.get_by_role("button", name="Inloggen met DigiD").click()
    expect(citizen.get_by_role("heading", level=1)).to_have_text("U gaat naar DigiD")
    check_page(citizen, "citizen-to-digid")
    citizen.get_by_role("button", name="Verder naar DigiD").click()
    expect(citizen.get_by_role("heading", level=1)).to_have_text("DigiD-simulator")
    citizen.get_by_role("button", name="Annuleren").click()

    expect(citizen.get_by_role("status")).to_contain_text("U heeft het inloggen met DigiD gestopt.")
    check_page(citizen, "citizen-cancelled")
    expect_status(staff, "Inloggen gestopt door de inwoner")
    citizen.get_by_role("button", name="Inloggen met DigiD").click()
    citizen.get_by_role("button", name="Verder naar DigiD").click()
    digid_simulator(citizen, bsn=BSN)
    assert visible_code(citizen) == visible_code(staff)


def test_citizen_without_javascript_logs_in_and_gets_the_zaaknummer_with_the_refresh_link(
    browsers: Browsers,
) -> None:
    """No JavaScript at all: forms and plain links carry the whole citizen flow (screenshots only: axe needs JS,
    and these templates are checked with JavaScript in the other tests)."""
    staff = browsers.open()
    staff_login(staff)
    link = staff_start(staff, "Inwoner nog niet bekend")
    citizen = browsers.open(viewport=PHONE, java_script=False)
    citizen.goto(link)
    citizen.get_by_role("button", name="Inloggen met DigiD").click()
    expect(citizen.get_by_role("heading", level=1)).to_have_text("U gaat naar DigiD")
    citizen.get_by_role("button", name="Verder naar DigiD").click()
    digid_simulator(citizen, bsn=BSN)
    expect(citizen.get_by_role("heading", level=1)).to_have_text("U bent ingelogd met DigiD")
    code = visible_code(citizen)
    for _ in range(30):  # the citizen presses "Pagina vernieuwen" until the zaaknummer is there
        if citizen.locator("[data-zaak]").count():
            break
        citizen.wait_for_timeout(500)
        citizen.get_by_role("link", name="Pagina vernieuwen").click()
    expect(citizen.locator("[data-zaak]")).to_be_visible()
    assert visible_code(citizen) == code
    save_screenshot(citizen, "citizen-new-citizen-result-no-js")


def test_unknown_used_and_expired_links_get_a_clear_page(browsers: Browsers, demo_server: DemoServer) -> None:
    """A mistyped link, a used link and an expired link each explain what to do next."""
    citizen = browsers.open(viewport=PHONE)
    response = citizen.goto("/i/this-link-does-not-exist")
    assert response is not None and response.status == 404
    expect(citizen.get_by_role("heading", level=1)).to_have_text("Deze link werkt niet")
    check_page(citizen, "citizen-unknown-link")

    staff = browsers.open()
    staff_login(staff)
    used = staff_start(staff, "Inwoner nog niet bekend")
    first = browsers.open(viewport=PHONE)
    first.goto(used)
    first.get_by_role("button", name="Inloggen met DigiD").click()
    digid_simulator(first, bsn=BSN)
    expect(first.get_by_role("heading", level=1)).to_have_text("U bent ingelogd met DigiD")
    response = citizen.goto(used)
    assert response is not None and response.status == 409
    expect(citizen.get_by_role("heading", level=1)).to_have_text("Deze link is al gebruikt")
    check_page(citizen, "citizen-used-link")

    staff.goto("/staff/")
    expired = staff_start(staff, "Wederzijdse zekerheid")
    demo_server.clock.offset = timedelta(minutes=demo_server.app.extensions["zgwid"].settings.session_minutes + 1)
    try:
        response = citizen.goto(expired)
        assert response is not None and response.status == 410
        expect(citizen.get_by_role("heading", level=1)).to_have_text("Deze link is verlopen")
        check_page(citizen, "citizen-expired")
    finally:
        demo_server.clock.offset = timedelta(0)


def test_pages_reflow_at_320_pixels_wide_without_horizontal_scrolling(browsers: Browsers) -> None:
    """WCAG 1.4.10: at 320 CSS px (a 1280 px screen at 400 % zoom) nothing needs sideways scrolling."""
    staff = browsers.open(viewport={"width": 320, "height": 640})
    staff_login(staff)
    link = staff_start(staff, "Inwoner bekend", bsn=BSN)
    citizen = browsers.open(viewport={"width": 320, "height": 640})
    citizen.goto(link)
    pages = [(staff, "staff session"), (citizen, "citizen start")]
    for page, what in pages:
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{what} scrolls sideways by {overflow}px at 320px"
    check_page(staff, "staff-known-citizen-320px")
    staff.goto("/staff/")
    assert staff.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    check_page(staff, "staff-overview-320px")
