"""Background work: the outbox relay and the event consumers, in ``casedesk worker`` or
inside ``casedesk serve`` in the embedded mode."""
