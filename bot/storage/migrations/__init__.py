"""Alembic migrations of the Helpline schema, run by ``Store.upgrade()``."""
