"""Scoring the production retrieval on a FAQ JSONL and a queries JSONL (``kb evaluate``).

The index is built with ``build_index``, exactly as ``kb publish`` builds it, so the figures describe what
citizens get. Abstention is measured the hard way: for each answerable query its gold entries are removed
from the index, and the search should then say "no answer" rather than offer a neighbouring entry.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder, make_embedder
from knowledge.lexical import JiebaWords, WordSegmenter
from knowledge.retrieval import SearchIndex, build_index
from knowledge.types import Citation, Passage, SearchResult


class EvaluationInputError(ValueError):
    code = "kb.evaluate_input"


@dataclass(frozen=True)
class EvalQuery:
    text: str
    gold: frozenset[int]  # internal ids of acceptable entries; empty for an unanswerable query


@dataclass(frozen=True)
class QueryOutcome:
    rank: int | None  # 1-based rank of the first gold entry among the top 10
    answered: bool
    top_id: int | None
    confidence: float
    fused: float
    margin: float
    ms: float


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationInputError(
                f"{path} 第 {n} 行不是合法的 JSON：{exc} / {path} line {n} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(row, dict):
            raise EvaluationInputError(f"{path} 第 {n} 行应为对象 / {path} line {n} must be an object")
        rows.append(row)
    return rows


def load_faq(path: Path) -> tuple[list[Passage], dict[str, int]]:
    """Passages for a FAQ JSONL (``id``, ``question``, ``answer``, optional ``similar_questions``) and the map
    from the file's ids (any JSON scalar) to the integer ``faq_id`` used in the index."""
    passages: list[Passage] = []
    ids: dict[str, int] = {}
    for n, row in enumerate(_read_jsonl(path), 1):
        if "id" not in row or not str(row.get("answer") or row.get("question") or "").strip():
            raise EvaluationInputError(
                f"{path} 第 {n} 条缺少 id 或 answer / {path} entry {n} needs an id and an answer or question"
            )
        key = str(row["id"])
        fid = ids.setdefault(key, len(ids) + 1)
        question = str(row.get("question") or "").strip()
        answer = str(row.get("answer") or "").strip()
        citation = Citation(title=question or answer[:30], section=row.get("category"), version=None,
                            effective_date=None, source_url=None)
        if not question:
            # an answer-only passage: searched as a document chunk, still scored as this entry
            passages.append(Passage(key=f"faq:{key}", kind="chunk", text=answer, citation=citation, faq_id=fid))
            continue
        phrasings = [question, *[str(q).strip() for q in row.get("similar_questions") or [] if str(q).strip()]]
        for j, text in enumerate(dict.fromkeys(phrasings)):
            passages.append(Passage(key=f"faq:{key}:{j}", kind="faq", text=text, citation=citation,
                                    answer=answer or None, faq_id=fid))
    return passages, ids


def load_queries(path: Path, ids: dict[str, int]) -> list[EvalQuery]:
    queries = []
    for n, row in enumerate(_read_jsonl(path), 1):
        text = str(row.get("query") or "").strip()
        if not text:
            raise EvaluationInputError(f"{path} 第 {n} 条缺少 query / {path} entry {n} has no query")
        raw = row.get("faq_id")
        wanted = [] if raw is None else raw if isinstance(raw, list) else [raw]
        unknown = [w for w in wanted if str(w) not in ids]
        if unknown:
            raise EvaluationInputError(
                f"{path} 第 {n} 条引用了不存在的条目 {unknown} / {path} entry {n} refers to unknown ids {unknown}"
            )
        queries.append(EvalQuery(text=text, gold=frozenset(ids[str(w)] for w in wanted)))
    return queries


def _hit_id(passage: Passage) -> int | None:
    return passage.faq_id


def run_queries(index: SearchIndex, queries: Sequence[EvalQuery], k: int = 10) -> list[QueryOutcome]:
    outcomes = []
    for q in queries:
        started = time.perf_counter()
        result: SearchResult = index.search(q.text, k=k)
        ms = (time.perf_counter() - started) * 1000
        ranked = list(dict.fromkeys(_hit_id(h.passage) for h in result.hits))
        rank = next((i + 1 for i, fid in enumerate(ranked) if fid in q.gold), None)
        top = result.hits[0] if result.hits else None
        outcomes.append(
            QueryOutcome(
                rank=rank,
                answered=result.answered,
                top_id=_hit_id(top.passage) if top else None,
                confidence=top.score if top else 0.0,
                fused=top.scores.get("fused", 0.0) if top else 0.0,
                margin=top.scores.get("margin", 0.0) if top else 0.0,
                ms=ms,
            )
        )
    return outcomes


def quality(outcomes: Sequence[QueryOutcome]) -> dict[str, float]:
    ranks = [o.rank for o in outcomes]
    ms = np.asarray([o.ms for o in outcomes]) if outcomes else np.zeros(1)
    n = max(len(ranks), 1)
    return {
        "recall_at_1": sum(r == 1 for r in ranks) / n,
        "recall_at_5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr_at_10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p95": float(np.percentile(ms, 95)),
        "queries": len(outcomes),
    }


def leave_gold_out(
    passages: Sequence[Passage],
    queries: Sequence[EvalQuery],
    embedder: Embedder,
    cache_dir: Path,
    config: KnowledgeConfig,
    tokenizer: WordSegmenter,
) -> list[QueryOutcome]:
    """Each answerable query against an index without its gold entries (one build per distinct gold set;
    the vector cache makes each rebuild embed nothing)."""
    by_gold: dict[frozenset[int], list[int]] = {}
    for i, q in enumerate(queries):
        if q.gold:
            by_gold.setdefault(q.gold, []).append(i)
    outcomes: dict[int, QueryOutcome] = {}
    for gold, members in by_gold.items():
        kept = [p for p in passages if p.faq_id not in gold]
        index = build_index(kept, embedder, cache_dir, config, tokenizer=tokenizer)
        for i, outcome in zip(members, run_queries(index, [queries[i] for i in members]), strict=True):
            outcomes[i] = outcome
    return [outcomes[i] for i in sorted(outcomes)]


def abstention(answerable: Sequence[QueryOutcome], removed: Sequence[QueryOutcome],
               unanswerable: Sequence[QueryOutcome] = ()) -> dict[str, float]:
    n = max(len(answerable), 1)
    answered = [o for o in answerable if o.answered]
    out = {
        "abstain_rate_gold_removed": sum(not o.answered for o in removed) / max(len(removed), 1),
        "answered_rate": len(answered) / n,
        "answered_correct_rate": sum(o.rank == 1 for o in answered) / n,
        "precision_when_answered": sum(o.rank == 1 for o in answered) / max(len(answered), 1),
        "direct_or_answered_queries": len(answered),
    }
    if unanswerable:
        out["abstain_rate_unanswerable"] = sum(not o.answered for o in unanswerable) / len(unanswerable)
    return out


def evaluate(
    faq_path: Path,
    queries_path: Path,
    config: KnowledgeConfig,
    project_dir: Path,
    *,
    embedder: Embedder | None = None,
    with_abstention: bool = False,
    unanswerable_path: Path | None = None,
    tokenizer: WordSegmenter | None = None,
    cache_dir: Path | None = None,
) -> dict[str, float]:
    passages, ids = load_faq(faq_path)
    queries = load_queries(queries_path, ids)
    embedder = embedder or make_embedder(config, project_dir)
    tokenizer = tokenizer or JiebaWords()
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        cache = cache_dir or Path(tmp)
        index = build_index(passages, embedder, cache, config, tokenizer=tokenizer)
        answerable = [q for q in queries if q.gold]
        outcomes = run_queries(index, answerable)
        result: dict[str, float] = quality(outcomes)
        if with_abstention or unanswerable_path is not None:
            removed = leave_gold_out(passages, answerable, embedder, cache, config, tokenizer)
            extra = [q for q in queries if not q.gold]
            if unanswerable_path is not None:
                extra += load_queries(unanswerable_path, ids)
            result.update(abstention(outcomes, removed, run_queries(index, extra) if extra else ()))
    return result


def register_evaluate(kb_app: typer.Typer) -> None:
    @kb_app.command("evaluate")
    def evaluate_command(
        faq: Annotated[Path, typer.Option(help="FAQ JSONL: id, question, answer", exists=True, dir_okay=False)],
        queries: Annotated[Path, typer.Option(help="queries JSONL: query, faq_id", exists=True, dir_okay=False)],
        as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
        abstain: Annotated[bool, typer.Option("--abstention", help="also measure abstention (slower)")] = False,
        project: Annotated[Path, typer.Option("--project", "-p", help="project directory (config.yml)")] = Path("."),
    ) -> None:
        """用生产检索代码评估 FAQ 检索质量 / Score retrieval on a FAQ file and a queries file."""
        config = _project_knowledge_config(project)
        try:
            figures = evaluate(faq, queries, config, project, with_abstention=abstain)
        except EvaluationInputError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(figures, ensure_ascii=False, indent=1))
            return
        for key, value in figures.items():
            typer.echo(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")


def _project_knowledge_config(project: Path) -> KnowledgeConfig:
    """The ``knowledge:`` section of the project's config.yml, or the defaults when there is none."""
    import yaml

    path = project / "config.yml"
    if not path.exists():
        return KnowledgeConfig()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return KnowledgeConfig.model_validate(data.get("knowledge") or {})
