"""Every read the API makes, as SQLAlchemy Core, alike on SQLite and PostgreSQL; one module per
resource."""
