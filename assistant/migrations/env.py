"""Alembic environment of the assistant's own tables: run with a connection handed in by
``assistant.migrations.migrate`` (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from assistant.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through assistant.migrations.migrate(url) / 请通过 assistant.migrations.migrate 执行迁移"
    )

context.configure(
    connection=connection,
    # the models live in several packages (store, accounts, handoff, connectors.dedupe); the migrations are
    # written by hand and tests/replicas/test_migrations.py compares them with the models
    target_metadata=None,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
