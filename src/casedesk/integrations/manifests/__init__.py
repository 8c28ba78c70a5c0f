"""Connector manifests: the low-code description of a service (see ``connector.py``)."""

from casedesk.integrations.manifests.connector import (
    ActionDef,
    ConnectorManifest,
    EnricherDef,
    ManifestInvalid,
    Problem,
    TriggerDef,
    load_manifest,
    parse_manifest,
    read_document,
)

__all__ = [
    "ActionDef",
    "ConnectorManifest",
    "EnricherDef",
    "ManifestInvalid",
    "Problem",
    "TriggerDef",
    "load_manifest",
    "parse_manifest",
    "read_document",
]
