"""Integrations with third-party services.

``hub`` is the one way out: every call to a third party is guarded (``guard``), retried
(``retry``) and traced.
"""
