"""Integrations with third-party services.

``hub`` is the one way out: every call to a third party is guarded (``guard``), paced by
its connection's rate limit (``ratelimit``), retried (``retry``), read up to a byte cap and
traced.
"""
