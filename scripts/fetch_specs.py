#!/usr/bin/env python3
"""Download the official OpenAPI documents the tests validate against, at pinned commits, SHA-256 checked.

    python scripts/fetch_specs.py                  # into $ZGWID_TEST_SPECS_DIR, default ../shared/specs
    python scripts/fetch_specs.py --dest DIR       # somewhere else (then export ZGWID_TEST_SPECS_DIR=DIR)
    python scripts/fetch_specs.py --check          # only verify what is there, download nothing
    make specs                                     # the same as the first line

The documents are third-party (VNG Realisatie, Open Zaak, Open Klant, RvIG; all EUPL-1.2) and are not
part of this repository. Each one is fetched from raw.githubusercontent.com at the commit named below,
written only when its SHA-256 equals the pinned value, and left alone when a verified copy is already
there. ``--base-url`` points at a mirror with the same ``<owner>/<repo>/<commit>/<path>`` layout (an
``https://`` or a ``file://`` URL). Exit codes: 0 all present and verified, 1 a download failed or did
not match its checksum (nothing unverified is left behind), 2 bad arguments.

The Open Zaak recordings (``ZGWID_TEST_FIXTURES_DIR``) cannot be downloaded: see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
GEMMA = ("VNG-Realisatie/gemma-zaken", "36de868eacd7cc9cfb8318b9c0f9519bacd4e0d6")
OPEN_ZAAK = ("open-zaak/open-zaak", "71c52aed4a6b21e3daf7444accaa41e5b93329de")  # tag 1.30.0


@dataclass(frozen=True)
class Source:
    name: str  # file name in the specs folder
    repo: str  # owner/name on GitHub
    commit: str
    path: str  # path in the repository at that commit
    sha256: str

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{self.path}"


def _gemma(name: str, path: str, sha256: str) -> Source:
    return Source(name, GEMMA[0], GEMMA[1], path, sha256)


def _open_zaak(name: str, component: str, sha256: str) -> Source:
    return Source(name, OPEN_ZAAK[0], OPEN_ZAAK[1], f"src/openzaak/components/{component}/openapi.yaml", sha256)


SOURCES: tuple[Source, ...] = (
    # The ZGW standard as published (ZGW "1.5 release": what Open Zaak 1.30 implements); the tests use these.
    _gemma(
        "zaken-api-1.5.1.yaml",
        "api-specificatie/zrc/1.5.x/1.5.1/openapi.yaml",
        "132eaa29d4ff5460b88ee1960c8e7c0c96f719542ccba490515068f121a2cb43",
    ),
    _gemma(
        "documenten-api-1.4.3.yaml",
        "api-specificatie/drc/1.4.x/1.4.3/openapi.yaml",
        "cdef7df64f6f46b7f82d0890810fcf9a05c985a2f15a6dfa5d4697cfa2c8afc7",
    ),
    _gemma(
        "catalogi-api-1.3.1.yaml",
        "api-specificatie/ztc/1.3.x/1.3.1/openapi.yaml",
        "0e8804b5d3f1001b8bfa452764fbd3aeb0ae54857cacdb02ba19a97543436b22",
    ),
    _gemma(
        "documenten-api-1.5.0.yaml",
        "api-specificatie/drc/1.5.x/1.5.0/openapi.yaml",
        "56530141f8ddde376f2c28846f104663a5e8c0d3cfec28a1e145eb33fa2d7b8c",
    ),
    # The ZGW "1.7 release" (forward compatibility only).
    _gemma(
        "zaken-api-1.7.0.yaml",
        "docs/standaard/zaken/zrc/1.7.x/1.7.0/openapi.yaml",
        "e4bb3b85eb48b82795ebe2bb2570c05e76822923accbe0e57d292901dbce448c",
    ),
    _gemma(
        "documenten-api-1.7.0.yaml",
        "docs/standaard/documenten/drc/1.7.x/1.7.0/openapi.yaml",
        "63695ff3767ff75e5a6cab60a1a00654bc8be60e87d66b382aa27678f1dadea9",
    ),
    _gemma(
        "catalogi-api-1.3.3.yaml",
        "docs/standaard/catalogi/ztc/1.3.x/1.3.3/openapi.yaml",
        "2068dbec008e5e208433266a386f03f6d69964617f566779dcb1c7150f48a80d",
    ),
    _gemma(
        "autorisaties-api-1.1.0.yaml",
        "docs/standaard/autorisaties/ac/1.1.x/1.1.0/openapi.yaml",
        "e0ec980f269f17fda3c463281fae754a41b8ef0183d35a80a4330c2856b2de1f",
    ),
    # VNG's reference implementations at their release tags.
    Source(
        "zaken-api-1.5.1.refimpl.yaml",
        "VNG-Realisatie/zaken-api",
        "920ecf3b972dc7270a124ef55f60ba0ece69d588",
        "src/openapi.yaml",
        "2944c846ce5c8458c4fcc6655e2788705b664cab8412e3b2de0dbe77e2492bd0",
    ),
    Source(
        "documenten-api-1.4.3.refimpl.yaml",
        "VNG-Realisatie/documenten-api",
        "8c69e2ed31ddf5ece0bfc75b1223204e39de5077",
        "src/openapi.yaml",
        "25098572c1f14d698ea6f2031c6e29414afcb9c978a2d74439f799085bf7974f",
    ),
    Source(
        "documenten-api-1.5.0.refimpl.yaml",
        "VNG-Realisatie/documenten-api",
        "6b763bd649f9db5d817f564ddd2ebccd741e099b",
        "src/openapi.yaml",
        "bc24581a5f95a83e332b367431e53ee0b7dcd8d1ee6a1462b71ecd166e675b6b",
    ),
    Source(
        "catalogi-api-1.3.1.refimpl.yaml",
        "VNG-Realisatie/catalogi-api",
        "a75aeb570cb7250d68ad1a34d66956518a9e1e58",
        "src/openapi.yaml",
        "40a5b8bbc17d675a9a603d32a3a5fbdba12662afa7b0d9c882548e2abb4acde0",
    ),
    # What Open Zaak 1.30.0 itself serves (with its experimental extensions).
    _open_zaak(
        "openzaak-1.30.0-zaken-api-1.5.1.yaml",
        "zaken",
        "6e8b93e30c1667501e27c5b59a017ab3ce3a4c0329980193d35575a6b88e7438",
    ),
    _open_zaak(
        "openzaak-1.30.0-documenten-api-1.4.2.yaml",
        "documenten",
        "ec1fb5b323901f3810bc6c71f84d8e9184b3167d4cf1a9e92f57b9de2241a615",
    ),
    _open_zaak(
        "openzaak-1.30.0-catalogi-api-1.3.1.yaml",
        "catalogi",
        "5f36b997785f00873f27c7c82d305f4e4fa2024c80ae7aa9d3c620072c7602be",
    ),
    _open_zaak(
        "openzaak-1.30.0-autorisaties-api-1.0.0.yaml",
        "autorisaties",
        "93bcd005a89ececd402de81147e86a5f30ac8dafb5366291c80b9198e7f4c691",
    ),
    # Notificaties 1.0.0 (tag 1.0.0.post1), Open Klant 2.18.0, BRP Personen bevragen 2.7.0.
    Source(
        "notificaties-1.0.0.yaml",
        "VNG-Realisatie/notificaties-api",
        "b181ab89b4c560c629e6d6aba4d632c40260b27f",
        "src/openapi.yaml",
        "ff27778ddd2f6e638878f00f9bb7fe72044e7f95bc316ed1d4f9a7e21ae4b637",
    ),
    Source(
        "openklant-2.18.0-klantinteracties-api-0.9.0.yaml",
        "maykinmedia/open-klant",
        "3b11751b02a93df70bed997a23bb499c526853c0",
        "src/openklant/components/klantinteracties/openapi.yaml",
        "52ae448e17d4189dc9f29d08754074bad0a41863db5b5d822457e8b77d828798",
    ),
    Source(
        "brp-personen-2.7.0.resolved.yaml",
        "BRP-API/Haal-Centraal-BRP-bevragen",
        "e995b9ea4aa5bb10b01f36501f486ce603cf3c0b",
        "specificatie/resolved/openapi.yaml",
        "3c4350e00d89ed5945b2047bda132b7ed3853d3dde79636ea9dca11df255b15f",
    ),
)


def default_dest() -> Path:
    """The folder the tests read (tests/third_party.py): ZGWID_TEST_SPECS_DIR, else ../shared/specs."""
    value = os.environ.get("ZGWID_TEST_SPECS_DIR", "").strip()
    return Path(value).expanduser() if value else REPO.parent / "shared" / "specs"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, source: Source) -> bool:
    return path.is_file() and sha256_of(path) == source.sha256


def download(source: Source, dest: Path, base_url: str, *, timeout: float = 60.0) -> str | None:
    """Fetch one document into ``dest``; None when it is there and verified, else the reason it is not."""
    target = dest / source.name
    url = source.url(base_url)
    if not url.startswith(("https://", "file://")):
        return f"{source.name}: refusing {url} (only https:// or file:// URLs)"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source.name}.", dir=dest)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - scheme checked above
            while block := answer.read(1 << 16):
                out.write(block)
        actual = sha256_of(tmp)
        if actual != source.sha256:
            return f"{source.name}: SHA-256 {actual} from {url} is not the pinned {source.sha256}"
        tmp.replace(target)
        return None
    except OSError as exc:  # URLError and HTTPError are OSErrors
        return f"{source.name}: {url}: {exc}"
    finally:
        tmp.unlink(missing_ok=True)


def fetch(dest: Path, *, base_url: str = DEFAULT_BASE_URL, sources: tuple[Source, ...] = SOURCES) -> list[str]:
    """Download what is missing or wrong; the problems (empty: every document present and verified)."""
    dest.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for source in sources:
        if verified(dest / source.name, source):
            print(f"ok       {source.name}")
            continue
        problem = download(source, dest, base_url)
        if problem:
            problems.append(problem)
            print(f"FAILED   {problem}", file=sys.stderr)
        else:
            print(f"fetched  {source.name}  ({source.repo}@{source.commit[:12]})")
    return problems


def check(dest: Path, *, sources: tuple[Source, ...] = SOURCES) -> list[str]:
    problems = []
    for source in sources:
        path = dest / source.name
        if not path.is_file():
            problems.append(f"{source.name}: missing")
        elif (actual := sha256_of(path)) != source.sha256:
            problems.append(f"{source.name}: SHA-256 {actual} is not the pinned {source.sha256}")
    for problem in problems:
        print(f"FAILED   {problem}", file=sys.stderr)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dest", type=Path, default=None, help="default: $ZGWID_TEST_SPECS_DIR or ../shared/specs")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="a mirror (https:// or file://)")
    parser.add_argument("--check", action="store_true", help="verify the files in --dest, download nothing")
    args = parser.parse_args(argv)
    dest = (args.dest or default_dest()).resolve()
    problems = check(dest) if args.check else fetch(dest, base_url=args.base_url)
    if problems:
        print(f"{len(problems)} of {len(SOURCES)} documents missing or not verified in {dest}", file=sys.stderr)
        return 1
    print(f"all {len(SOURCES)} documents verified in {dest}")
    if dest != (REPO.parent / "shared" / "specs").resolve():
        print(f"the tests read them with: export ZGWID_TEST_SPECS_DIR={dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
