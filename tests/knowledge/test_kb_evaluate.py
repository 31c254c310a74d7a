"""``evaluate`` and ``kb evaluate`` on the small fixture, with the production index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from knowledge.config import KnowledgeConfig
from knowledge.evaluate import EvaluationInputError, evaluate, register_evaluate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "knowledge"
KEYS = {"recall_at_1", "recall_at_5", "mrr_at_10", "latency_ms_p50", "latency_ms_p95"}


def test_evaluate_reports_quality_and_abstention(tmp_path: Path) -> None:
    unanswerable = tmp_path / "unanswerable.jsonl"
    unanswerable.write_text(
        json.dumps({"query": "明天会下雨吗，需要带伞吗"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    # every third query (all tags, fewer index rebuilds for the leave-gold-out part)
    lines = FIXTURES.joinpath("queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(lines[::3]) + "\n", encoding="utf-8")
    figures = evaluate(FIXTURES / "faq.jsonl", queries, KnowledgeConfig(), tmp_path,
                       with_abstention=True, unanswerable_path=unanswerable)
    assert set(figures) >= KEYS
    assert figures["queries"] == 13
    # 12 entries only: retrieval should be near perfect, and recall@5 >= recall@1
    assert 0.8 <= figures["recall_at_1"] <= figures["recall_at_5"] <= 1.0
    assert figures["recall_at_1"] <= figures["mrr_at_10"] <= figures["recall_at_5"]
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"]
    assert figures["abstain_rate_unanswerable"] == 1.0
    assert 0.0 <= figures["abstain_rate_gold_removed"] <= 1.0


def test_evaluate_rejects_unknown_ids_bilingually(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "社保卡", "faq_id": 999}\n', encoding="utf-8")
    with pytest.raises(EvaluationInputError, match="unknown ids") as info:
        evaluate(FIXTURES / "faq.jsonl", queries, KnowledgeConfig(), tmp_path)
    assert "不存在" in str(info.value)


def test_kb_evaluate_command_prints_json(tmp_path: Path) -> None:
    app = typer.Typer()
    kb = typer.Typer()
    app.add_typer(kb, name="kb")
    register_evaluate(kb)
    # the project's config.yml is honoured: a lexical-only retriever here (and no model to load)
    (tmp_path / "config.yml").write_text("knowledge:\n  fusion_weights: {pinyin: 1.0}\n", encoding="utf-8")
    queries = tmp_path / "q.jsonl"
    lines = FIXTURES.joinpath("queries.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    queries.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["kb", "evaluate", "--faq", str(FIXTURES / "faq.jsonl"), "--queries",
                                      str(queries), "--json", "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) >= KEYS and figures["queries"] == 6
    assert figures["latency_ms_p50"] < 20  # no query embedding: the config.yml above was used
