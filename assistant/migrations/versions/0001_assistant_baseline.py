"""The assistant's tables as the stores created them before migrations: dialogue events, staff accounts, sessions
and audit log, the handoff queue and tickets, inbound message dedupe.

A database those stores already created (``create_all``) is adopted as it is: each table is created only if it
is missing, so upgrading an existing deployment changes nothing and only records the revision.

Revision ID: 0001_assistant
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_assistant"
down_revision = None
branch_labels = None
depends_on = None

_OPEN_SQL = "state IN ('waiting', 'with_agent')"


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    if "dialogue_events" not in existing:
        op.create_table(
            "dialogue_events",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("conversation_id", sa.String(255), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("type", sa.String(64), nullable=False),
            sa.Column("timestamp", sa.Float(), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.UniqueConstraint("conversation_id", "seq", name="uq_dialogue_events_conversation_seq"),
        )
        op.create_index("ix_dialogue_events_conversation_id", "dialogue_events", ["conversation_id"])

    if "staff_users" not in existing:
        op.create_table(
            "staff_users",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("username", sa.String(64), nullable=False, unique=True),
            sa.Column("display_name", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("team", sa.String(40), nullable=True),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
        )

    if "staff_sessions" not in existing:
        op.create_table(
            "staff_sessions",
            sa.Column("token_hash", sa.String(64), primary_key=True),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("csrf", sa.String(64), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.Column("revoked", sa.Boolean(), nullable=False),
        )
        op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])

    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("at", sa.Float(), nullable=False),
            sa.Column("actor", sa.String(64), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("target", sa.String(255), nullable=False),
            sa.Column("source", sa.String(128), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=False),
        )
        op.create_index("ix_audit_log_at", "audit_log", ["at"])
        op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
        op.create_index("ix_audit_log_action", "audit_log", ["action"])

    if "handoff_sessions" not in existing:
        op.create_table(
            "handoff_sessions",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("conversation_id", sa.String(255), nullable=False),
            sa.Column("channel", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("reason", sa.String(32), nullable=False),
            sa.Column("team", sa.String(40), nullable=False),
            sa.Column("priority", sa.Integer(), nullable=False),
            sa.Column("agent_id", sa.String(64), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("queued_at", sa.Float(), nullable=False),
            sa.Column("claimed_at", sa.Float(), nullable=True),
            sa.Column("ended_at", sa.Float(), nullable=True),
            sa.Column("outcome", sa.String(32), nullable=True),
            sa.Column("rating", sa.Integer(), nullable=True),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        op.create_index("ix_handoff_sessions_conversation_id", "handoff_sessions", ["conversation_id"])
        # at most one open handoff per conversation: the database decides races between replicas
        op.create_index(
            "uq_handoff_open_conversation", "handoff_sessions", ["conversation_id"], unique=True,
            sqlite_where=sa.text(_OPEN_SQL), postgresql_where=sa.text(_OPEN_SQL),
        )
        op.create_index("ix_handoff_state_queue", "handoff_sessions", ["state", "priority", "queued_at"])

    if "handoff_tickets" not in existing:
        op.create_table(
            "handoff_tickets",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("ref", sa.String(32), nullable=False, unique=True),
            sa.Column("conversation_id", sa.String(255), nullable=False),
            sa.Column("channel", sa.String(64), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("handled_by", sa.String(64), nullable=True),
            sa.Column("handled_at", sa.Float(), nullable=True),
        )
        op.create_index("ix_handoff_tickets_conversation_id", "handoff_tickets", ["conversation_id"])

    if "inbound_seen" not in existing:
        op.create_table(
            "inbound_seen",
            sa.Column("key", sa.String(200), primary_key=True),
            sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    for index, table in (
        ("ix_handoff_tickets_conversation_id", "handoff_tickets"),
        ("ix_handoff_state_queue", "handoff_sessions"),
        ("uq_handoff_open_conversation", "handoff_sessions"),
        ("ix_handoff_sessions_conversation_id", "handoff_sessions"),
        ("ix_audit_log_action", "audit_log"),
        ("ix_audit_log_actor", "audit_log"),
        ("ix_audit_log_at", "audit_log"),
        ("ix_staff_sessions_user_id", "staff_sessions"),
        ("ix_dialogue_events_conversation_id", "dialogue_events"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("inbound_seen", "handoff_tickets", "handoff_sessions", "audit_log", "staff_sessions",
                  "staff_users", "dialogue_events"):
        op.drop_table(table)
