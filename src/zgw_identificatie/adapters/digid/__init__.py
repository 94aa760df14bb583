"""DigiD SAML service provider (python3-saml 1.16.0 + own artifact resolution; docs/decisions/0001)."""

from .config import SpConfig, sp_config_from_settings
from .sp import DigidServiceProvider

__all__ = ["DigidServiceProvider", "SpConfig", "sp_config_from_settings"]
