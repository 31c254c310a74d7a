"""Tables added for running a deployment: login attempts (login limits), the form outbox (submissions retried in the
background), citizen feedback, the dashboard's daily roll-ups, the retention job's daily claim, and the index the
dashboard reads dialogue events by.

Like the baseline, a table is created only if missing: the stores that own these tables still create them when
they open (tests and tools open stores without a server), so a database they already made is adopted as it is.

Revision ID: 0002_operations
Revises: 0001_assistant
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_operations"
down_revision = "0001_assistant"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())

    if "login_attempts" not in existing:
        op.create_table(
            "login_attempts",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("at", sa.Float(), nullable=False),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("source", sa.String(128), nullable=False),
            sa.Column("ok", sa.Boolean(), nullable=False),
        )
        for column in ("at", "username", "source"):
            op.create_index(f"ix_login_attempts_{column}", "login_attempts", [column])

    if "form_outbox" not in existing:
        op.create_table(
            "form_outbox",
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("conversation_id", sa.String(255), nullable=False),
            sa.Column("form", sa.String(128), nullable=False),
            sa.Column("target", sa.String(1000), nullable=True),
            sa.Column("channel", sa.String(64), nullable=True),
            sa.Column("data", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", sa.Float(), nullable=False),
            sa.Column("lease_until", sa.Float(), nullable=True),
            sa.Column("reference", sa.String(128), nullable=True),
            sa.Column("last_error", sa.String(64), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
        )
        for column in ("conversation_id", "status", "next_attempt_at"):
            op.create_index(f"ix_form_outbox_{column}", "form_outbox", [column])

    if "citizen_feedback" not in existing:
        op.create_table(
            "citizen_feedback",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("conversation_id", sa.String(255), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("score", sa.Integer(), nullable=False),
            sa.Column("comment", sa.Text(), nullable=True),
            sa.Column("channel", sa.String(64), nullable=False),
        )
        op.create_index("ix_citizen_feedback_conversation_id", "citizen_feedback", ["conversation_id"])
        op.create_index("ix_citizen_feedback_at", "citizen_feedback", ["at"])

    if "analytics_daily" not in existing:
        op.create_table(
            "analytics_daily",
            sa.Column("day", sa.String(10), primary_key=True),
            sa.Column("questions", sa.Integer(), nullable=False),
            sa.Column("answered", sa.Integer(), nullable=False),
            sa.Column("handoffs", sa.Integer(), nullable=False),
            sa.Column("computed_at", sa.Float(), nullable=False),
        )

    if "analytics_daily_intents" not in existing:
        op.create_table(
            "analytics_daily_intents",
            sa.Column("day", sa.String(10), primary_key=True),
            sa.Column("intent", sa.String(255), primary_key=True),
            sa.Column("count", sa.Integer(), nullable=False),
        )

    if "privacy_runs" not in existing:
        op.create_table(
            "privacy_runs",
            sa.Column("job", sa.String(32), primary_key=True),
            sa.Column("day", sa.String(10), nullable=False),
            sa.Column("started_at", sa.Float(), nullable=True),
            sa.Column("finished_at", sa.Float(), nullable=True),
            sa.Column("report", sa.JSON(), nullable=True),
        )

    event_indexes = {ix["name"] for ix in inspector.get_indexes("dialogue_events")}
    if "ix_dialogue_events_type_timestamp" not in event_indexes:
        op.create_index(
            "ix_dialogue_events_type_timestamp", "dialogue_events", ["type", "timestamp", "conversation_id"]
        )


def downgrade() -> None:
    op.drop_index("ix_dialogue_events_type_timestamp", table_name="dialogue_events")
    for table in ("privacy_runs", "analytics_daily_intents", "analytics_daily", "citizen_feedback", "form_outbox",
                  "login_attempts"):
        op.drop_table(table)
