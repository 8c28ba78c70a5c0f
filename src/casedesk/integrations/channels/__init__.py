"""The protocol hooks of the built-in channel connectors (Gmail, Microsoft Graph, Slack)."""
