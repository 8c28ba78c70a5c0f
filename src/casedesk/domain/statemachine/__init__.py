"""Case state machines: definitions checked as a whole, then compiled for fast lookups."""
