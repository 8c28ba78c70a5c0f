"""The hooks of the Gmail connector."""

from __future__ import annotations

from casedesk.integrations.connector_hooks import ManifestHooks


class GmailHooks(ManifestHooks):
    """Leaves everything to the manifest until the connector is built."""
