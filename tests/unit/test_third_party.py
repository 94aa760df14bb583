"""The third-party reference data: absent → one clear skip (a failure under CI=true), never a crash;
``scripts/fetch_specs.py`` writes a document only when its SHA-256 is the pinned one."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import third_party

REPO = Path(__file__).resolve().parents[2]


def load_fetch_specs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_specs", REPO / "scripts" / "fetch_specs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_specs"] = module  # dataclasses look the module up while the class is made
    spec.loader.exec_module(module)
    return module


fetch_specs = load_fetch_specs()


def run_pytest(tmp_path: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    """The real suite's collection and run of the given test files, with empty specs and fixtures folders."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"ZGWID_TEST_SPECS_DIR": str(empty), "ZGWID_TEST_FIXTURES_DIR": str(empty)})
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsf", "--no-header", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )


ZGW_HTTP = "tests/integration/test_zgw_http.py"
SANDBOX_RECORDED = (
    "tests/integration/test_zgw_sandbox.py::test_created_zaken_look_like_open_zaak_zaken_with_generated_identificatie"
)


@pytest.mark.slow
def test_without_the_data_the_affected_tests_skip_with_one_message(tmp_path: Path) -> None:
    """No specs, no recordings, CI unset: collection does not crash; the tests skip naming the setting."""
    result = run_pytest(tmp_path, ZGW_HTTP, SANDBOX_RECORDED, ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout
    assert "error" not in result.stdout.lower()
    assert "SKIPPED [2]" in result.stdout  # the same sentence for both, so pytest shows it once
    assert result.stdout.count(third_party.SPECS_ENV) == 1
    assert "make specs" in result.stdout


@pytest.mark.slow
def test_without_the_data_a_ci_run_fails_with_the_same_message(tmp_path: Path) -> None:
    """CI=true: the same tests fail (not skip, not a collection error), with the clear message."""
    result = run_pytest(tmp_path, ZGW_HTTP, SANDBOX_RECORDED, ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed" in result.stdout
    assert "error" not in result.stdout.lower().replace("ci=true: a failure", "")
    assert "CI=true: a failure, not a skip" in result.stdout
    assert "StopIteration" not in result.stdout + result.stderr


def test_the_data_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ZGWID_TEST_SPECS_DIR / ZGWID_TEST_FIXTURES_DIR replace the ../shared defaults."""
    monkeypatch.setenv("ZGWID_TEST_SPECS_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("ZGWID_TEST_FIXTURES_DIR", str(tmp_path / "f"))
    fresh = importlib.util.spec_from_file_location("third_party_fresh", Path(third_party.__file__))
    assert fresh is not None and fresh.loader is not None
    module = importlib.util.module_from_spec(fresh)
    fresh.loader.exec_module(module)
    assert module.SPECS_DIR == (tmp_path / "s").resolve()
    assert module.RECORDINGS_DIR == (tmp_path / "f" / "openzaak-smoke").resolve()
    assert module.missing(module.SPECS, module.RECORDINGS)  # empty folders: everything is missing


def test_every_module_listed_as_needing_data_exists() -> None:
    """A renamed test module would silently lose its guard."""
    for relative in third_party.MODULES:
        assert (REPO / "tests" / relative).is_file(), relative


# --- scripts/fetch_specs.py ----------------------------------------------------------------------


def mirror_of(tmp_path: Path, files: dict[str, bytes]) -> tuple[str, tuple[object, ...]]:
    """A file:// mirror with the <owner>/<repo>/<commit>/<path> layout of raw.githubusercontent.com."""
    root = tmp_path / "mirror"
    sources = []
    for name, content in files.items():
        source = fetch_specs.Source(name, "owner/repo", "c0ffee", f"spec/{name}", hashlib.sha256(content).hexdigest())
        target = root / "owner/repo/c0ffee/spec" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        sources.append(source)
    return root.as_uri(), tuple(sources)


def test_fetch_writes_documents_whose_checksum_matches(tmp_path: Path) -> None:
    base, sources = mirror_of(tmp_path, {"a.yaml": b"openapi: 3.0.3\n", "b.yaml": b"openapi: 3.1.0\n"})
    dest = tmp_path / "specs"
    assert fetch_specs.fetch(dest, base_url=base, sources=sources) == []
    assert (dest / "a.yaml").read_bytes() == b"openapi: 3.0.3\n"
    assert sorted(p.name for p in dest.iterdir()) == ["a.yaml", "b.yaml"]  # no temporary files left
    assert fetch_specs.check(dest, sources=sources) == []


def test_a_document_with_another_checksum_is_not_written(tmp_path: Path) -> None:
    base, sources = mirror_of(tmp_path, {"a.yaml": b"openapi: 3.0.3\n"})
    (tmp_path / "mirror/owner/repo/c0ffee/spec/a.yaml").write_bytes(b"openapi: 3.0.3\n# changed upstream\n")
    dest = tmp_path / "specs"
    problems = fetch_specs.fetch(dest, base_url=base, sources=sources)
    assert len(problems) == 1 and "a.yaml: SHA-256" in problems[0] and "not the pinned" in problems[0]
    assert list(dest.iterdir()) == []


def test_a_verified_copy_is_kept_and_a_wrong_one_replaced(tmp_path: Path) -> None:
    base, sources = mirror_of(tmp_path, {"a.yaml": b"good\n", "b.yaml": b"also good\n"})
    dest = tmp_path / "specs"
    dest.mkdir()
    (dest / "a.yaml").write_bytes(b"good\n")
    (dest / "b.yaml").write_bytes(b"edited by hand\n")
    (tmp_path / "mirror/owner/repo/c0ffee/spec/a.yaml").unlink()  # a.yaml must not be fetched again
    assert fetch_specs.fetch(dest, base_url=base, sources=sources) == []
    assert (dest / "b.yaml").read_bytes() == b"also good\n"


def test_an_unreachable_source_is_reported_and_nothing_is_left(tmp_path: Path) -> None:
    _, sources = mirror_of(tmp_path, {"a.yaml": b"x\n"})
    dest = tmp_path / "specs"
    problems = fetch_specs.fetch(dest, base_url=(tmp_path / "nowhere").as_uri(), sources=sources)
    assert len(problems) == 1 and problems[0].startswith("a.yaml: file://")
    assert list(dest.iterdir()) == []


def test_only_https_and_file_urls_are_used(tmp_path: Path) -> None:
    _, sources = mirror_of(tmp_path, {"a.yaml": b"x\n"})
    problems = fetch_specs.fetch(tmp_path / "specs", base_url="http://example.org", sources=sources)
    assert problems and "only https:// or file://" in problems[0]


def test_the_pinned_checksums_are_those_of_the_reference_copies(tmp_path: Path) -> None:
    """Every pinned SOURCE verifies against the copies the team tests with (served from a file:// mirror)."""
    present = [s for s in fetch_specs.SOURCES if (third_party.SPECS_DIR / s.name).is_file()]
    if len(present) != len(fetch_specs.SOURCES):
        third_party.require(third_party.SPECS)
        pytest.skip(f"only {len(present)} of {len(fetch_specs.SOURCES)} documents in {third_party.SPECS_DIR}")
    root = tmp_path / "mirror"
    for source in fetch_specs.SOURCES:
        target = root / source.repo / source.commit / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():  # several documents share a path at different commits; never at the same one
            target.symlink_to(third_party.SPECS_DIR / source.name)
    dest = tmp_path / "specs"
    assert fetch_specs.main(["--dest", str(dest), "--base-url", root.as_uri()]) == 0
    assert fetch_specs.main(["--dest", str(dest), "--check"]) == 0
    assert len(list(dest.glob("*.yaml"))) == len(fetch_specs.SOURCES) == 19
