"""casedesk: a customer-service case system with a built-in integration platform."""

__version__ = "0.1.0"
