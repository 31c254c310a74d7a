"""Building a search index from passages, and searching it: the seam the store and the assistant use.

``build_index`` turns published passages into a ``SearchIndex``; ``SearchIndex.search`` answers one query with
ranked, de-duplicated hits, a calibrated confidence, an abstention decision and citations. Building is kept
apart from querying: an index is built once per published version, saved, and loaded by every replica.

FAQ passages (one per phrasing: the standard question and each similar question, ``answer`` set) are grouped
by ``faq_id``; the index adds one question+answer text per FAQ itself. A chunk is a group of its own.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.dense import DenseIndex, DenseParams
from knowledge.embedders import Embedder, EmbedderError, EnsembleEmbedder, VectorCache, embed_passages_cached
from knowledge.hybrid import aggregate_roles, confidence, fuse_rrf, fuse_weighted, margins, top_flags
from knowledge.lexical import BM25Index, JiebaWords, LexicalIndex, PinyinIndex, WordSegmenter, build_lexical
from knowledge.types import Citation, Hit, Passage, SearchResult
from nlu.normalize import normalize_text

FORMAT_VERSION = 1
PHRASING, FULL = 0, 1


@dataclass(frozen=True)
class BuildStats:
    passages: int
    groups: int
    vectors: int
    embedded: int  # passage texts that had to be embedded (the rest came from the vector cache)
    seconds: float


@dataclass(frozen=True)
class _Layout:
    """Which group and role each embedded text belongs to, and which passages make up each group."""

    entry_texts: tuple[str, ...]
    entry_group: np.ndarray  # int64, per entry
    entry_role: np.ndarray  # int8, per entry
    entry_passage: np.ndarray  # int64, per entry: the passage shown when this entry wins
    group_passages: tuple[tuple[int, ...], ...]
    group_text: tuple[str, ...]  # question+answer / chunk text, for lexical retrievers
    group_expiry: tuple[date | None, ...]


def _source_key(passage: Passage, group: int) -> int:
    """Chunks of one document share a key; each FAQ entry is its own source (negative, apart from documents);
    a passage with neither is a source of its own."""
    if passage.kind == "faq" and passage.faq_id is not None:
        return -1 - int(passage.faq_id)
    if passage.document_id is not None:
        return int(passage.document_id)
    return -(1 << 40) - group


def _layout(passages: Sequence[Passage]) -> _Layout:
    groups: dict[tuple[str, object], list[int]] = {}
    for i, p in enumerate(passages):
        gkey: tuple[str, object] = ("faq", p.faq_id) if p.kind == "faq" and p.faq_id is not None else ("key", p.key)
        groups.setdefault(gkey, []).append(i)
    texts: list[str] = []
    egroup: list[int] = []
    erole: list[int] = []
    epass: list[int] = []
    gtext: list[str] = []
    gexp: list[date | None] = []
    for g, members in enumerate(groups.values()):
        first = passages[members[0]]
        if first.kind == "faq":
            for i in members:
                texts.append(passages[i].text)
                egroup.append(g)
                erole.append(PHRASING)
                epass.append(i)
            full = f"{first.text}\n{first.answer or ''}".strip()
        else:
            full = first.text
        texts.append(full)
        egroup.append(g)
        erole.append(FULL)
        epass.append(members[0])
        gtext.append(full)
        dates = [passages[i].expiry_date for i in members if passages[i].expiry_date is not None]
        # the earliest expiry wins: better to abstain than to answer from a stale phrasing
        gexp.append(min(dates) if dates else None)
    return _Layout(
        entry_texts=tuple(texts),
        entry_group=np.asarray(egroup, np.int64),
        entry_role=np.asarray(erole, np.int8),
        entry_passage=np.asarray(epass, np.int64),
        group_passages=tuple(tuple(m) for m in groups.values()),
        group_text=tuple(gtext),
        group_expiry=tuple(gexp),
    )


def _dense_params(config: KnowledgeConfig) -> DenseParams:
    return DenseParams(
        exact_max=config.exact_search_max, ivf_nprobe=config.ivf_nprobe, hnsw_ef_search=config.hnsw_ef_search
    )


def _uses_dense(config: KnowledgeConfig) -> bool:
    return config.fusion_weights.get("dense", 0.0) != 0.0


def build_index(
    passages: Sequence[Passage],
    embedder: Embedder,
    cache_dir: Path | None,
    config: KnowledgeConfig,
    *,
    tokenizer: WordSegmenter | None = None,
) -> SearchIndex:
    started = time.perf_counter()
    passages = tuple(passages)
    layout = _layout(passages)
    tokenizer = tokenizer or JiebaWords()
    embedded = 0
    dense: DenseIndex | None = None
    cache = VectorCache(cache_dir) if cache_dir is not None else None
    if _uses_dense(config):
        vectors, embedded = embed_passages_cached(embedder, layout.entry_texts, cache)
        dense = DenseIndex.build(vectors, _dense_params(config))
    lexical = {
        name: build_lexical(name, layout.group_text, tokenizer, cache)
        for name, w in config.fusion_weights.items()
        if name != "dense" and w != 0.0
    }
    stats = BuildStats(
        passages=len(passages),
        groups=len(layout.group_passages),
        vectors=len(layout.entry_texts) if dense is not None else 0,
        embedded=embedded,
        seconds=time.perf_counter() - started,
    )
    return SearchIndex(passages, layout, embedder, dense, lexical, config, stats, tokenizer)


class SearchIndex:
    def __init__(
        self,
        passages: tuple[Passage, ...],
        layout: _Layout,
        embedder: Embedder,
        dense: DenseIndex | None,
        lexical: dict[str, LexicalIndex],
        config: KnowledgeConfig,
        stats: BuildStats,
        tokenizer: WordSegmenter,
    ) -> None:
        self.passages = passages
        self._layout = layout
        self.embedder = embedder
        self._dense = dense
        self._lexical = lexical
        self.config = config
        self.stats = stats
        self._tokenizer = tokenizer
        # entries of each group, to score every phrasing of a candidate exactly
        order = np.argsort(layout.entry_group, kind="stable")
        bounds = np.searchsorted(layout.entry_group[order], np.arange(len(layout.group_passages) + 1))
        self._group_entries = [order[bounds[g] : bounds[g + 1]] for g in range(len(layout.group_passages))]
        # the source of each group, for margins: chunks of one document share it; FAQ entries are negative keys
        self._group_source = np.asarray(
            [_source_key(passages[members[0]], g) for g, members in enumerate(layout.group_passages)], np.int64
        )
        # expiry as day ordinals (no expiry: never), so the live mask is one comparison, not a Python loop
        never = date.max.toordinal()
        self._expiry_ordinal = np.asarray([never if e is None else e.toordinal() for e in layout.group_expiry], np.int64)

    def __len__(self) -> int:
        return len(self.passages)

    # ---- querying -------------------------------------------------------------------------------------

    def _live_groups(self, today: date) -> np.ndarray:
        return self._expiry_ordinal >= today.toordinal()

    def _candidates(
        self, qvec: np.ndarray | None, lexical_scores: dict[str, np.ndarray], live: np.ndarray, k: int
    ) -> np.ndarray:
        want = max(self.config.search_candidates, k)
        if int(live.sum()) <= want:
            return np.flatnonzero(live)
        found: set[int] = set()
        for scores in lexical_scores.values():
            masked = np.where(live, scores, -np.inf)
            top = np.argpartition(-masked, want - 1)[:want]
            found.update(int(g) for g in top if live[g])
        if qvec is not None and self._dense is not None:
            fetch = want * 4
            while True:
                _, ids = self._dense.search(qvec, fetch)
                groups = {int(self._layout.entry_group[i]) for i in ids[0] if i >= 0}
                live_groups = [g for g in groups if live[g]]
                if len(live_groups) >= want or fetch >= len(self._dense):
                    found.update(live_groups)
                    break
                fetch *= 4
        return np.asarray(sorted(found) if found else np.flatnonzero(live)[:want], np.int64)

    def search(self, query: str, k: int = 5, today: date | None = None) -> SearchResult:
        today = today or date.today()
        normalized = normalize_text(query)
        live = self._live_groups(today)
        if not any(ch.isalnum() for ch in normalized) or not live.any():
            return SearchResult(query=query, answered=False, answer=None, hits=())
        weights = self.config.fusion_weights
        lexical_scores = {name: index.scores(normalized) for name, index in self._lexical.items()}
        qvec = self.embedder.embed_queries([normalized]) if self._dense is not None else None
        cands = self._candidates(qvec, lexical_scores, live, k)

        per: dict[str, np.ndarray] = {name: s[cands] for name, s in lexical_scores.items()}
        members: dict[str, np.ndarray] = {}
        best_entry: np.ndarray | None = None
        if qvec is not None and self._dense is not None:
            entries = np.concatenate([self._group_entries[g] for g in cands])
            # cands is sorted and holds every entry's group: the slot of an entry is a binary search
            slots = np.searchsorted(cands, self._layout.entry_group[entries])
            roles = self._layout.entry_role[entries]
            vectors = self._dense.vectors(entries)
            entry_scores = vectors @ qvec[0]
            per["dense"] = aggregate_roles(entry_scores, slots, roles, len(cands))
            best_entry = _best_phrasing(entries, slots, entry_scores, roles, len(cands))
            members = self._member_scores(vectors, qvec[0], slots, roles, len(cands))

        fuse = fuse_rrf if self.config.fusion_method == "rrf" else fuse_weighted
        fused = fuse(per, weights)
        sources = self._group_source[cands]
        margin = margins(fused, sources)
        order = np.argsort(-fused, kind="stable")[:k]
        features = self._features(normalized, cands, order, per, members, fused, margin, sources)
        conf = confidence(features, self.config.confidence_features, self.config.calibration)

        hits = []
        for i, slot in enumerate(order):
            g = int(cands[slot])
            pidx = (
                int(self._layout.entry_passage[best_entry[slot]])
                if best_entry is not None and best_entry[slot] >= 0
                else self._layout.group_passages[g][0]
            )
            scores = {name: float(f[i]) for name, f in features.items()}
            hits.append(Hit(passage=self.passages[pidx], score=float(conf[i]), scores=scores))
        return self._result(query, tuple(hits))

    def _member_scores(
        self, vectors: np.ndarray, qvec: np.ndarray, slots: np.ndarray, roles: np.ndarray, n: int
    ) -> dict[str, np.ndarray]:
        """Each ensemble member's own cosine per candidate (``dense_member<i>``), from the joined vectors; a
        single model is member 0."""
        if not isinstance(self.embedder, EnsembleEmbedder):
            return {"dense_member0": aggregate_roles(vectors @ qvec, slots, roles, n)}
        out = {}
        for i, (_, cols, scale) in enumerate(self.embedder.member_slices()):
            cosines = (vectors[:, cols] @ qvec[cols]) / scale
            out[f"dense_member{i}"] = aggregate_roles(cosines, slots, roles, n)
        return out

    def _features(
        self,
        normalized: str,
        cands: np.ndarray,
        order: np.ndarray,
        per: dict[str, np.ndarray],
        members: dict[str, np.ndarray],
        fused: np.ndarray,
        margin: np.ndarray,
        sources: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """What the confidence model may use, for the ranked slots ``order``: each retriever's score, the
        fused score and margin, each ensemble member's cosine and whether it ranks the group first, the share
        of the query's pinyin tokens the group's text holds, the query's out-of-vocabulary share and length."""
        features = {name: s[order] for name, s in per.items()}
        for name, s in members.items():
            features[name] = s[order]
            features[name + "_top"] = top_flags(s, sources)[order]
            features[name + "_margin"] = margins(s, sources)[order]
        features["fused"] = fused[order]
        features["margin"] = margin[order]
        pinyin = self._lexical.get("pinyin")
        if isinstance(pinyin, PinyinIndex):
            features["coverage"], oov = pinyin.coverage(normalized, cands[order])
            features["oov"] = np.full(len(order), oov, np.float32)
        features["query_chars"] = np.full(len(order), np.log1p(sum(ch.isalnum() for ch in normalized)), np.float32)
        return features

    def _result(self, query: str, hits: tuple[Hit, ...]) -> SearchResult:
        if not hits or hits[0].score < self.config.answer_threshold:
            return SearchResult(query=query, answered=False, answer=None, hits=hits)
        top = hits[0].passage
        direct = top.kind == "faq" and top.answer is not None and hits[0].score >= self.config.direct_faq_threshold
        answer = top.answer if top.kind == "faq" and top.answer else top.text
        citations: list[Citation] = [top.citation]
        # other confident chunks support a document answer; a FAQ answer stands on its own source
        if top.kind == "chunk":
            for hit in hits[1:]:
                if hit.score >= self.config.answer_threshold and hit.passage.citation not in citations:
                    citations.append(hit.passage.citation)
        return SearchResult(
            query=query, answered=True, answer=answer, hits=hits, citations=tuple(citations), direct_faq=direct
        )

    # ---- persistence ----------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._dense is not None:
            self._dense.save(directory / "dense.faiss")
        with open(directory / "index.pkl", "wb") as fh:
            pickle.dump(
                {"passages": self.passages, "layout": self._layout, "lexical": self._lexical, "stats": self.stats},
                fh,
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        meta = {
            "format": FORMAT_VERSION,
            "embedder": self.embedder.name,
            "dim": self.embedder.dim,
            "config": self.config.model_dump(mode="json"),
        }
        (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(
        cls, directory: Path, embedder: Embedder, *, tokenizer: WordSegmenter | None = None
    ) -> SearchIndex:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise EmbedderError(
                f"索引格式版本 {meta.get('format')} 不受支持，请重新发布 / index format {meta.get('format')} is not"
                f" supported (expected {FORMAT_VERSION}); publish again"
            )
        saved = dict(meta["config"])
        # indexes published before confidence_features existed were calibrated on (fused, margin)
        saved.setdefault("confidence_features", ["fused", "margin"])
        config = KnowledgeConfig.model_validate(saved)
        dense_file = directory / "dense.faiss"
        if dense_file.exists() and meta["embedder"] != embedder.name:
            raise EmbedderError(
                f"索引由模型 {meta['embedder']} 构建，当前模型为 {embedder.name}，请重新发布 / the index was built"
                f" with {meta['embedder']} but the embedder is {embedder.name}; publish again"
            )
        with open(directory / "index.pkl", "rb") as fh:
            state = pickle.load(fh)  # our own artefact, written by save() above
        tokenizer = tokenizer or JiebaWords()
        for index in state["lexical"].values():
            if isinstance(index, BM25Index):
                index.attach(tokenizer)
        dense = DenseIndex.load(dense_file, _dense_params(config)) if dense_file.exists() else None
        return cls(state["passages"], state["layout"], embedder, dense, state["lexical"], config, state["stats"], tokenizer)


def _best_phrasing(
    entries: np.ndarray, slots: np.ndarray, scores: np.ndarray, roles: np.ndarray, n: int
) -> np.ndarray:
    """Per candidate slot, the entry (index into the layout) of its best-scoring phrasing; -1 for chunks."""
    best = np.full(n, -1, np.int64)
    best_score = np.full(n, -np.inf, np.float32)
    for e, s, sc, r in zip(entries, slots, scores, roles, strict=True):
        if r == PHRASING and sc > best_score[s]:
            best_score[s] = sc
            best[s] = e
    return best
