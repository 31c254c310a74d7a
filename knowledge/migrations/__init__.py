"""Alembic migrations of the knowledge base, applied from code by ``knowledge.db.migrate``."""
