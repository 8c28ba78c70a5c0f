"""The hooks of the Graph connector."""

from __future__ import annotations

from casedesk.integrations.connector_hooks import ManifestHooks


class GraphHooks(ManifestHooks):
    """Leaves everything to the manifest until the connector is built."""
