"""The hooks of the Slack connector."""

from __future__ import annotations

from casedesk.integrations.connector_hooks import ManifestHooks


class SlackHooks(ManifestHooks):
    """Leaves everything to the manifest until the connector is built."""
