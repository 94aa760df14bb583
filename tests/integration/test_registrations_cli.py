"""``zgw-identificatie registrations``: the operator lists failed registrations and resumes them, also after
the session that started them has expired (issue 9)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from zgw_identificatie.app import build_store
from zgw_identificatie.cli import main
from zgw_identificatie.domain.sessions import RegistrationState
from zgw_identificatie.flows.registration import start_registration
from zgw_identificatie.settings import load_settings
from zgw_identificatie.testing.builders import TEST_BSN, a_proof, a_session
from zgw_identificatie.testing.clock import FixedClock


def operator_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The store the CLI will open: the operator's instance folder, in the working directory."""
    monkeypatch.chdir(tmp_path)
    env = {"ZGWID_INSTANCE_PATH": str(tmp_path / "instance")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_store(load_settings(environ=env))


def test_failed_registrations_are_listed_and_resumed_by_the_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = operator_store(tmp_path, monkeypatch)
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


def test_the_operator_sees_the_outbox_per_channel_and_sends_given_up_events_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``zgw-identificatie events``: a receiver that refused everything for two days got its deliveries given up;
    once it is fixed, ``--retry-failed --channel`` queues them again (they are kept a day after giving up)."""
    from zgw_identificatie.domain.sessions import SessionState

    store = operator_store(tmp_path, monkeypatch)
    clock = FixedClock()
    for _ in range(2):
        store.add(a_session(clock.now(), state=SessionState.CREATED, authenticated_at=None, level=None))
    store.fan_out_events(lambda e: ["webhook:zac"], clock.now(), limit=100)
    for d in store.claim_due_deliveries(clock.now(), lease_seconds=60, limit=100):
        store.finish_delivery(d.id, now=clock.now(), ok=False, error="HTTP 410", retry_at=None)

    assert main(["events"]) == 0
    out = capsys.readouterr().out
    assert "webhook:zac  given-up=2  most-attempts=1  since=" in out and "HTTP 410" in out
    assert "0 waiting, 2 given up (--retry-failed [--channel CHANNEL] sends those again)" in out

    assert main(["events", "--retry-failed", "--channel", "webhook:zac"]) == 0
    assert "2 given-up deliveries of webhook:zac are due again" in capsys.readouterr().out
    assert main(["events"]) == 0
    out = capsys.readouterr().out
    assert "webhook:zac  waiting=2  most-attempts=0  next=" in out and "2 waiting, 0 given up" in out
