"""The database schema's history as Alembic migrations; ``Database.migrate`` applies them."""
