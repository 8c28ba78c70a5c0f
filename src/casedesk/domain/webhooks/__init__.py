"""Outbound webhooks: subscriptions, signed deliveries and their retry schedule."""
