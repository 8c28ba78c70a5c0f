"""adapter layer: HTTP routers and schemas. Maps and converts; no business logic."""

API_V1 = "/api/v1"
