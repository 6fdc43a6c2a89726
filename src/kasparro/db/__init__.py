"""Storage: schema, engine and migrations (SQLAlchemy Core and Alembic)."""
