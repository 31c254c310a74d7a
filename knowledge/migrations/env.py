"""Alembic environment: run with a connection handed in by ``knowledge.db.migrate`` (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from knowledge.db import Base

# its own version table, so other packages can keep their own Alembic history in the same database
VERSION_TABLE = "kb_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through knowledge.db.migrate(url) / 请通过 knowledge.db.migrate 执行迁移"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
