"""Copy the NL Design System CSS from node_modules into the package's static folder (not committed)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "zgw_identificatie" / "web" / "static" / "vendor"

# (npm file, name in static/vendor)
FILES: list[tuple[str, str]] = []


def main() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    for source, target in FILES:
        path = ROOT / "node_modules" / source
        if not path.is_file():
            raise SystemExit(f"{source} is missing: run `npm install` (make setup does)")
        shutil.copyfile(path, VENDOR / target)


if __name__ == "__main__":
    main()
