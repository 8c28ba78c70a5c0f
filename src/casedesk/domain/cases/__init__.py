"""Cases, their tasks, comments and history."""
