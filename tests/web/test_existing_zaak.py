"""Attaching the proof to an existing zaak, which usually has its initiator already."""

from __future__ import annotations

import pytest

from demo_driver import Citizen, Staff, demo_app, run_worker

BSN = "999993653"
OTHER = "111222333"


@pytest.fixture
def app(tmp_path):
    return demo_app(tmp_path)


def roltype_generiek(sandbox, rol):
    return next(r["omschrijvingGeneriek"] for r in sandbox.all("roltypen") if r["url"] == rol["roltype"])


def add_rol(sandbox, zaak, bsn, generiek):
    roltype = next(r["url"] for r in sandbox.all("roltypen") if r["omschrijvingGeneriek"] == generiek)
    with sandbox._lock:
        sandbox._put(
            "rollen",
            {
                "url": zaak["url"].replace("/zaken/", "/rollen/") + "-" + generiek,
                "zaak": zaak["url"],
                "roltype": roltype,
                "betrokkeneType": "natuurlijk_persoon",
                "betrokkeneIdentificatie": {"inpBsn": bsn},
            },
        )


def identify_on(app, zaak, flow="known-citizen"):
    staff = Staff.login(app)
    sid = staff.start(flow, zaak=zaak["identificatie"], **({"bsn": BSN} if flow == "known-citizen" else {}))
    Citizen.new(app).login(sid, bsn=BSN)
    run_worker(app)
    return staff.status(sid)


def test_a_zaak_with_someone_elses_initiator_gets_the_citizen_as_belanghebbende(app):
    """Open Zaak allows one initiator per zaak: the proof still lands, the citizen as belanghebbende."""
    sandbox = app.blueprints["sandbox"].sandbox
    zaak = sandbox.add_zaak()
    add_rol(sandbox, zaak, OTHER, "initiator")
    status = identify_on(app, zaak)
    assert status["registration"]["state"] == "done", status["registration"]
    mine = [
        r for r in sandbox.all("rollen") if r["zaak"] == zaak["url"] and r["betrokkeneIdentificatie"]["inpBsn"] == BSN
    ]
    assert len(mine) == 1 and roltype_generiek(sandbox, mine[0]) == "belanghebbende"
    assert len([link for link in sandbox.all("zaakinformatieobjecten") if link["zaak"] == zaak["url"]]) == 1


def test_a_citizen_who_already_has_a_rol_on_the_zaak_gets_no_second_one(app):
    """The citizen is the zaak's initiator already: that rol is reused; only the document is added."""
    sandbox = app.blueprints["sandbox"].sandbox
    zaak = sandbox.add_zaak()
    add_rol(sandbox, zaak, BSN, "initiator")
    status = identify_on(app, zaak, flow="mutual")
    assert status["registration"]["state"] == "done", status["registration"]
    assert len([r for r in sandbox.all("rollen") if r["zaak"] == zaak["url"]]) == 1
    assert len([link for link in sandbox.all("zaakinformatieobjecten") if link["zaak"] == zaak["url"]]) == 1
