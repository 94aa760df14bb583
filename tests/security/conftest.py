"""Makes tests/integration/saml_helpers.py importable for the SAML attack tests (no root conftest edits)."""

import sys
from pathlib import Path

_INTEGRATION = str(Path(__file__).resolve().parents[1] / "integration")
if _INTEGRATION not in sys.path:
    sys.path.insert(0, _INTEGRATION)
