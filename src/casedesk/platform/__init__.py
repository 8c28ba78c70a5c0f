"""platform layer: the integration platform's moving parts that act on the ticket domain.

Polling and instant triggers, the enricher that turns the ids a third party's events carry
into full entities, and the workflow runner whose steps create cases and add comments. It
sits above the activities (a workflow step runs one) and below the workers that schedule it;
it never reaches past the activities into the dao. The hub, connector manifests and auth
stay in ``casedesk.integrations``, which knows nothing of cases.
"""
