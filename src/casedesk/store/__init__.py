"""dao layer: SQLAlchemy models, generic repository, unit of work, migrations' runtime."""
