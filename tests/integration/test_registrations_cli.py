"""``zgw-identificatie registrations``: the operator lists failed registrations and resumes them, also after
the session that started them has expired (issue 9)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from zgw_identificatie.app import build_store
from zgw_identificatie.cli import main
from zgw_identificatie.domain.sessions import RegistrationState
from zgw_identificatie.flows.registration import start_registration
from zgw_identificatie.settings import load_settings
from zgw_identificatie.testing.builders import TEST_BSN, a_proof, a_session
from zgw_identificatie.testing.clock import FixedClock


def test_failed_registrations_are_listed_and_resumed_by_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"ZGWID_INSTANCE_PATH": str(tmp_path / "instance")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = build_store(load_settings(environ=env))
    clock = FixedClock()
    regs = []
    for i, proof_kept in enumerate((True, False)):
        session = a_session(clock.now(), id=f"sess-cli-{i}")  # never stored: as if purged after expiry
        reg = start_registration(
            session, a_proof(clock.now(), session_id=session.id), existing_zaak=None, store=store, clock=clock
        )
        failed = replace(
            reg,
            state=RegistrationState.FAILED,
            zaak_url="https://zaken.test/zaken/1",
            zaak_identificatie=f"ZAAK-{i}",
            error="rol: POST zaken /rollen answered 403 permission_denied",
            updated_at=clock.now() + timedelta(seconds=i),
            proof=reg.proof if proof_kept else None,
        )
        store.update_registration(failed)
        regs.append(failed)

    assert main(["registrations"]) == 0
    out = capsys.readouterr().out
    assert f"{regs[0].id}" in out and "stopped-at=rol  resumable" in out
    assert f"{regs[1].id}" in out and "proof erased" in out
    assert "2 failed registration(s)" in out
    assert TEST_BSN not in out

    assert main(["registrations", "--resume-all"]) == 0
    assert f"{regs[0].id}: resumed" in capsys.readouterr().out
    resumed = store.get_registration(regs[0].id)
    assert resumed is not None and resumed.state is RegistrationState.PENDING and resumed.zaak_url
    assert store.get_registration(regs[1].id).state is RegistrationState.FAILED  # type: ignore[union-attr]

    assert main(["registrations", "--resume", regs[1].id]) == 1
    assert "proof-erased" in capsys.readouterr().err
