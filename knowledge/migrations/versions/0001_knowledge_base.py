"""Knowledge base: documents, versions, chunks, FAQ entries, index versions, unanswered questions.

Revision ID: 0001_kb
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_kb"
down_revision = None
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("department", sa.String(200)),
        sa.Column("service_item", sa.String(200)),
        sa.Column("source_url", sa.String(1000)),
        sa.Column("effective_date", sa.Date()),
        sa.Column("expiry_date", sa.Date()),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(500)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer()),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
    )
    op.create_index("ix_kb_documents_status", "kb_documents", ["status"])
    op.create_index("ix_kb_documents_source_key", "kb_documents", ["source_key"])
    op.create_index("ix_kb_documents_content_hash", "kb_documents", ["content_hash"])

    op.create_table(
        "kb_document_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.UniqueConstraint("document_id", "version"),
    )
    op.create_index("ix_kb_document_versions_document_id", "kb_document_versions", ["document_id"])

    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "document_id", sa.Integer(), sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(500)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.UniqueConstraint("document_id", "version", "seq"),
    )
    op.create_index("ix_kb_chunks_document_id", "kb_chunks", ["document_id"])

    op.create_table(
        "kb_faq_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("similar_questions", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("category", sa.String(200)),
        sa.Column("document_ids", sa.JSON(), nullable=False),
        sa.Column("document_refs", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
    )
    op.create_index("ix_kb_faq_entries_status", "kb_faq_entries", ["status"])
    op.create_index("ix_kb_faq_entries_external_id", "kb_faq_entries", ["external_id"])
    op.create_index("ix_kb_faq_entries_content_hash", "kb_faq_entries", ["content_hash"])

    op.create_table(
        "kb_index_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("passage_count", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1000)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_kb_index_versions_status", "kb_index_versions", ["status"])

    op.create_table(
        "kb_unanswered_questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("normalized", sa.String(1000), nullable=False, unique=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_asked", _tz(), nullable=False),
        sa.Column("last_asked", _tz(), nullable=False),
        sa.Column("handled", sa.Boolean(), nullable=False),
        sa.Column("near_miss_keys", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "kb_unanswered_questions",
        "kb_index_versions",
        "kb_faq_entries",
        "kb_chunks",
        "kb_document_versions",
        "kb_documents",
    ):
        op.drop_table(table)
