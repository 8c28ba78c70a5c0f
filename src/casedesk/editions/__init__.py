"""Business editions: extension implementations chosen per tenant by its ``edition``."""
