"""The connectors that ship with casedesk: manifests in ``integrations/connectors/``.

A tenant's own connectors live in the database (``connectors``, ``connector_versions``); their
codes may not take a built-in one's.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from casedesk.integrations.manifests import ConnectorManifest, load_manifest


@cache
def builtin_manifests() -> dict[str, ConnectorManifest]:
    """Every built-in connector by id, read once per process."""
    found: dict[str, ConnectorManifest] = {}
    for entry in resources.files("casedesk.integrations.connectors").iterdir():
        if entry.name.endswith((".yaml", ".yml")):
            manifest = load_manifest(entry.read_text(encoding="utf-8"))
            if manifest.id in found:
                raise ValueError(f"two built-in connectors have the id {manifest.id!r}")
            found[manifest.id] = manifest
    return found


def builtin(connector_id: str) -> ConnectorManifest | None:
    return builtin_manifests().get(connector_id)
