"""Domain-free helpers shared by every layer: errors, identifiers, time, logging."""
