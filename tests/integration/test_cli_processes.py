"""The commands the container image runs, as real processes: ``serve`` (gunicorn), ``worker``, ``health``
and ``check-config``, as the HEALTHCHECK and an operator use them.

``health`` without options looks at PID 1; here ``--pid`` points it at the process the test started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zgw_identificatie.cli import health_target

BIN = Path(sys.executable).with_name("zgw-identificatie")


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZGWID_") and k != "XDG_RUNTIME_DIR"}
    env.update(
        ZGWID_INSTANCE_PATH=str(tmp_path / "instance"),
        TMPDIR=str(tmp_path),
        **extra,
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "health", *args],
        env=env_for(tmp_path, **extra),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def wait_until(check: Callable[[], bool], process: subprocess.Popen[str], *, attempts: int = 100) -> None:
    for _ in range(attempts):
        if process.poll() is not None:
            raise AssertionError(f"the process ended with {process.returncode}:\n{process.communicate()[0]}")
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def test_the_health_target_follows_gunicorns_bind_address() -> None:
    """serve --bind decides the port the check asks; unix sockets and other commands are not probed."""
    gunicorn = ["/opt/venv/bin/python", "-m", "gunicorn", "--workers", "2"]
    assert health_target(gunicorn) == ("http", "http://127.0.0.1:8000/health/live")
    assert health_target([*gunicorn, "--bind", "0.0.0.0:8080"]) == ("http", "http://127.0.0.1:8080/health/live")
    assert health_target([*gunicorn, "-b", "[::]:9000"]) == ("http", "http://127.0.0.1:9000/health/live")
    assert health_target([*gunicorn, "--bind=10.0.0.5:81"]) == ("http", "http://10.0.0.5:81/health/live")
    assert health_target([*gunicorn, "--bind", "unix:/run/g.sock"])[0] == "none"
    assert health_target(["/opt/venv/bin/python", "/opt/venv/bin/zgw-identificatie", "worker"]) == ("worker", "")
    assert health_target(["/opt/venv/bin/zgw-identificatie", "purge"])[0] == "none"
    # serve before it has exec'ed gunicorn (still reading its settings): the same port, not "nothing to check"
    serve = ["/opt/venv/bin/python", "/opt/venv/bin/zgw-identificatie", "serve"]
    assert health_target(serve) == ("http", "http://127.0.0.1:8000/health/live")
    assert health_target([*serve, "--bind", "127.0.0.1:8081"]) == ("http", "http://127.0.0.1:8081/health/live")
    assert health_target([])[0] == "unknown"  # unreadable: the check fails rather than guess


@pytest.mark.slow
def test_serve_answers_its_health_check_on_its_own_port_and_stops_cleanly_on_sigterm(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """gunicorn pinned, no control-socket error, HEALTHCHECK follows --bind, SIGTERM → exit 0."""
    port = free_port()
    home = tmp_path / "nonexistent"  # the image's user has no home; gunicorn >= 25.1 would make one for its socket
    serve = subprocess.Popen(
        [str(BIN), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env_for(tmp_path, HOME=str(home)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(serve)
    wait_until(lambda: health(tmp_path, "--pid", str(serve.pid)).returncode == 0, serve)
    result = health(tmp_path, "--pid", str(serve.pid))
    assert f"http://127.0.0.1:{port}/health/live answered 200" in result.stdout
    serve.send_signal(signal.SIGTERM)
    output, _ = serve.communicate(timeout=30)
    assert serve.returncode == 0, output
    assert "Control server" not in output and "Permission denied" not in output, output
    assert "Shutting down: Master" in output
    assert not home.exists()  # no control socket (as root here it could have been created; in the image not)
    assert health(tmp_path, "--url", f"http://127.0.0.1:{port}/health/live").returncode == 1  # gone


@pytest.mark.slow
def test_the_worker_is_healthy_while_its_loop_beats_and_stops_cleanly_on_sigterm(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """The worker's health is its heartbeat: absent or stale → unhealthy."""
    assert health(tmp_path, "--worker").returncode == 1  # no heartbeat yet
    worker = subprocess.Popen(
        [str(BIN), "worker"],
        env=env_for(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(worker)
    heartbeat = tmp_path / "zgw-identificatie-worker.heartbeat"
    wait_until(heartbeat.exists, worker)
    result = health(tmp_path, "--pid", str(worker.pid))
    assert result.returncode == 0 and "last worker iteration" in result.stdout, result.stdout
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    old = time.time() - 301
    os.utime(heartbeat, (old, old))
    stale = health(tmp_path, "--worker")
    assert stale.returncode == 1 and "unhealthy" in stale.stdout


@pytest.mark.slow
def test_check_config_with_an_unreachable_zaaksysteem_says_so_without_a_traceback(tmp_path: Path) -> None:
    """Valid settings, Catalogi API down: a clear message and exit code 3, not a stack trace."""
    closed = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [str(BIN), "check-config"],
        env=env_for(
            tmp_path,
            ZGWID_ZGW_SANDBOX="false",
            ZGWID_ZGW_ZAKEN_URL=f"{closed}/zaken/api/v1/",
            ZGWID_ZGW_DOCUMENTEN_URL=f"{closed}/documenten/api/v1/",
            ZGWID_ZGW_CATALOGI_URL=f"{closed}/catalogi/api/v1/",
            ZGWID_ZGW_TIMEOUT="2",
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "zaaksysteem unreachable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_worker_stopped_during_a_slow_receivers_batch_sends_no_more_and_hands_the_rest_back(
    tmp_path: Path, started: list[subprocess.Popen[str]], command: str
) -> None:
    """SIGTERM while a webhook receiver takes 2 s an answer: the worker finishes the call at hand, sends none of
    the four others of its batch, hands them back unleased (the next worker sends them at once) and exits. The
    same for ``serve``, whose web worker runs the worker loop in a thread (``ZGWID_WORKER_IN_PROCESS``, the
    default): gunicorn's ``worker_exit`` stops that thread instead of letting it die with the process."""
    import base64
    import json
    import threading
    from datetime import UTC, datetime

    from flask import Flask
    from werkzeug.serving import make_server

    from zgw_identificatie.adapters.crypto import DataCipher, generate_key
    from zgw_identificatie.adapters.sql_store import SqlSessionStore, make_engine, migrate
    from zgw_identificatie.domain.sessions import SessionState
    from zgw_identificatie.testing.builders import a_session
    from zgw_identificatie.web.security import hash_secret_sha256

    calls: list[float] = []
    receiver = Flask("slow-receiver")

    @receiver.post("/hook")
    def hook() -> tuple[str, int]:
        calls.append(time.monotonic())
        time.sleep(2)
        return "", 204

    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"sqlite:///{tmp_path / 'worker.sqlite'}"
    key = generate_key()
    store = SqlSessionStore(make_engine(url), DataCipher([key]))
    migrate(store.engine)
    now = datetime.now(UTC)
    for _ in range(5):
        store.add(a_session(now, state=SessionState.CREATED, authenticated_at=None, level=None, client_id="api:zac"))
    secret = "whsec_" + base64.b64encode(b"s" * 24).decode()
    api_keys = {
        "zac": {
            "key_hash": hash_secret_sha256("zac-key-0123456789abcdefghij"),
            "name": "Zaaksysteem",
            "behandelaar": "Team Zaken",
            "webhook_url": f"http://127.0.0.1:{server.server_port}/hook",
            "webhook_secret": secret,
        }
    }
    try:
        argv = ["worker"] if command == "worker" else ["serve", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"]
        worker = subprocess.Popen(
            [str(BIN), *argv],
            env=env_for(
                tmp_path,
                ZGWID_DATABASE_URL=url,
                ZGWID_ENCRYPTION_KEYS=key,
                ZGWID_API_KEYS=json.dumps(api_keys),
                ZGWID_LOG_LEVEL="INFO",
            ),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(worker)
        wait_until(lambda: bool(calls), worker, attempts=150)
        worker.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output
        assert time.monotonic() - asked < 6, output  # the call at hand (2 s), not the four others (8 s more)
        assert len(calls) == 1, output
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT state, attempts, lease_until FROM event_deliveries").all()
        assert sorted(state for state, _a, _l in rows) == ["done"] + ["pending"] * 4
        assert all(attempts == 0 and lease is None for state, attempts, lease in rows if state == "pending")
    finally:
        server.shutdown()
        store.engine.dispose()
