"""Set-up step after `npm install`: copy the NL Design System CSS into static/vendor and compile the
translations (.po -> .mo). Neither result is committed; `make setup` runs this on every fresh clone."""

from __future__ import annotations

import shutil
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "zgw_identificatie"
VENDOR = PACKAGE / "web" / "static" / "vendor"
TRANSLATIONS = PACKAGE / "translations"

# (file in node_modules, name in static/vendor)
FILES: list[tuple[str, str]] = [
    # NL Design System components (Utrecht community library, EUPL-1.2): buttons, form fields, alerts, …
    ("@utrecht/component-library-css/dist/index.css", "nlds-components.css"),
    # The NL Design System "Voorbeeld" theme (EUPL-1.2): design tokens for a neutral example municipality.
    # A municipality's own tokens come on top through settings.theme_css_url.
    ("@nl-design-system-unstable/voorbeeld-design-tokens/dist/theme.css", "nlds-theme.css"),
]


def copy_vendor_css() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    for source, target in FILES:
        path = ROOT / "node_modules" / source
        if not path.is_file():
            raise SystemExit(f"{source} is missing: run `npm install` (make setup does)")
        shutil.copyfile(path, VENDOR / target)


def compile_translations() -> list[Path]:
    """Compile every translations/<lang>/LC_MESSAGES/messages.po with Babel's own API (as pybabel compile)."""
    written = []
    for po_path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parts[-3])
        if catalog.fuzzy:
            raise SystemExit(f"{po_path} is marked fuzzy: review it before compiling")
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        written.append(mo_path)
    return written


def main() -> None:
    copy_vendor_css()
    compile_translations()


if __name__ == "__main__":
    main()
