"""Zaken, Documenten and Catalogi clients (ape-pie + per-request ZGW JWT) and the ZaakRegistry on them."""

from .auth import ZgwJwtAuth
from .catalogue import CatalogueRefs, resolve_catalogue
from .client import CRS_HEADERS, ApiRoots, ZgwClient, ZgwRefused, build_clients
from .registry import ZgwHttpRegistry, build_registry, document_identificatie, marker_key

__all__ = [
    "CRS_HEADERS",
    "ApiRoots",
    "CatalogueRefs",
    "ZgwClient",
    "ZgwHttpRegistry",
    "ZgwJwtAuth",
    "ZgwRefused",
    "build_clients",
    "build_registry",
    "document_identificatie",
    "marker_key",
    "resolve_catalogue",
]
