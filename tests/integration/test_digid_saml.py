"""The DigiD service provider against the DigiD simulator: full SAML round trips with real signatures.

begin_login → POST the signed AuthnRequest to the simulator → the simulator's login form → SAMLart in
the redirect → complete_login resolves it over the (in-process) HTTP back channel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from saml_helpers import ACS_URL, BASE_URL, OTHER_BSN, VALID_BSN, SimulatorWorld, make_simulator_world

from zgw_identificatie.adapters.digid import sp_config_from_settings
from zgw_identificatie.adapters.digid.artifact import make_artifact
from zgw_identificatie.demo import DemoInProduction
from zgw_identificatie.demo.digid_simulator import SIMULATOR_PREFIX, create_simulator_blueprint
from zgw_identificatie.domain.assurance import AssuranceLevel
from zgw_identificatie.domain.errors import DigidCancelled, DigidFailed
from zgw_identificatie.settings import Settings
from zgw_identificatie.testing.clock import FixedClock


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture
def world(instance_path: Path) -> SimulatorWorld:
    return make_simulator_world(instance_path)


def test_a_midden_login_returns_the_bsn_and_level(world: SimulatorWorld) -> None:
    """A Midden login through the simulator yields the typed BSN, Midden and the assertion's facts."""
    identity = world.login(required=AssuranceLevel.MIDDEN)
    assert identity.bsn.value == VALID_BSN
    assert identity.level is AssuranceLevel.MIDDEN
    assert identity.issuer == BASE_URL + SIMULATOR_PREFIX + "/metadata"
    assert identity.assertion_id.startswith("_")
    assert len(identity.assertion_sha256) == 64
    assert identity.authn_instant == world.clock.now()
