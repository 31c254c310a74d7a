"""Consistency checks for the demo knowledge base shipped in knowledge_base/.

Standalone on purpose (PyYAML + json only): the content is written by hand and must stay importable
and internally consistent whatever the importer code does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

KB_DIR = Path(__file__).resolve().parents[2] / "knowledge_base"
DOCS_DIR = KB_DIR / "docs"
FAQ_PATH = KB_DIR / "faq.jsonl"
QUERIES_PATH = KB_DIR / "eval" / "queries.jsonl"
UNANSWERABLE_PATH = KB_DIR / "eval" / "unanswerable.jsonl"

REQUIRED_FIELDS = ("title", "department", "service_item", "source_url", "effective_date", "tags")
# Superseded policies kept so expiry handling can be tested; each has a current successor.
EXPIRED_DOCS = {
    "hpf-withdraw-rent-2023.md": "hpf-withdraw-rent.md",
    "mortgage-registration-2023.md": "mortgage-registration.md",
}
QUERY_TAGS = {"colloq", "nokw", "syn", "trad", "en", "pinyin", "typo"}
CJK = re.compile(r"[\u4e00-\u9fff]")
# Characters that only occur in traditional script: a "trad" query must contain at least one.
TRADITIONAL_ONLY = set(
    "們這個證領補辦還錢買賣頭醫險養鄉區縣號費碼電話問麼為過時會間關廳戶護執續簽遷駕駛歲轉來與後幾應該實際單據"
    "報銷療撫農業務總價條處繳開門點雲遺丟準華學習請認臺灣營體歸職國匯參嗎墊帶掛換現產當稅積約結藥裡記變貸響預"
)
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _parse_doc(path: Path) -> tuple[dict[str, Any], str]:
    match = FRONT_MATTER.match(path.read_text(encoding="utf-8"))
    assert match, f"{path.name}: no YAML front matter delimited by ---"
    meta = yaml.safe_load(match.group(1))
    assert isinstance(meta, dict), f"{path.name}: front matter is not a mapping"
    return meta, match.group(2)


def _as_date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    assert isinstance(value, str), f"{where}: not a date: {value!r}"
    return dt.date.fromisoformat(value)


def _sections(body: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    current: str | None = None
    for line in body.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


DOC_PATHS = sorted(DOCS_DIR.glob("*.md"))
DOCS = {p.name: _parse_doc(p) for p in DOC_PATHS}
FAQ = _load_jsonl(FAQ_PATH)
QUERIES = _load_jsonl(QUERIES_PATH)
UNANSWERABLE = _load_jsonl(UNANSWERABLE_PATH)


def test_enough_documents() -> None:
    assert len(DOCS) >= 45


@pytest.mark.parametrize("name", sorted(DOCS))
def test_document_front_matter_and_sections(name: str) -> None:
    meta, body = DOCS[name]
    missing = [f for f in REQUIRED_FIELDS if not meta.get(f)]
    assert not missing, f"{name}: missing {missing}"
    for field in ("title", "department", "service_item"):
        assert isinstance(meta[field], str) and CJK.search(meta[field]), f"{name}: {field}"
    assert meta["source_url"].startswith("https://www.yunzhou.gov.cn/zwfw/"), name
    assert isinstance(meta["tags"], list) and all(isinstance(t, str) and t for t in meta["tags"]), name
    effective = _as_date(meta["effective_date"], name)
    if meta.get("expiry_date") is not None:
        assert _as_date(meta["expiry_date"], name) > effective, f"{name}: expires before it takes effect"
    unknown = set(meta) - set(REQUIRED_FIELDS) - {"expiry_date"}
    assert not unknown, f"{name}: unexpected front matter keys {unknown}"

    sections = _sections(body)
    assert len(sections) >= 3, f"{name}: only {len(sections)} sections"
    empty = [title for title, text in sections.items() if not text.strip()]
    assert not empty, f"{name}: empty sections {empty}"
    assert not re.search(r"^# ", body, re.M), f"{name}: the title belongs in front matter, not an H1"
    cjk_chars = len(CJK.findall(body))
    assert 300 <= cjk_chars <= 900, f"{name}: {cjk_chars} Chinese characters"


def test_titles_and_urls_are_unique() -> None:
    titles = Counter(meta["title"] for meta, _ in DOCS.values())
    urls = Counter(meta["source_url"] for meta, _ in DOCS.values())
    assert [t for t, n in titles.items() if n > 1] == []
    assert [u for u, n in urls.items() if n > 1] == []


def test_exactly_the_superseded_documents_are_expired() -> None:
    today = dt.date.today()
    expired = {
        name
        for name, (meta, _) in DOCS.items()
        if meta.get("expiry_date") is not None and _as_date(meta["expiry_date"], name) < today
    }
    assert expired == set(EXPIRED_DOCS)


@pytest.mark.parametrize(("old", "new"), sorted(EXPIRED_DOCS.items()))
def test_expired_document_has_a_current_successor(old: str, new: str) -> None:
    old_meta, _ = DOCS[old]
    new_meta, _ = DOCS[new]
    assert old_meta["service_item"] == new_meta["service_item"]
    assert _as_date(new_meta["effective_date"], new) > _as_date(old_meta["expiry_date"], old)
    assert new_meta.get("expiry_date") is None


def test_superseded_documents_contradict_their_successors() -> None:
    # The point of keeping them: a system answering from an expired document gives a wrong fact.
    _, old_rent = DOCS["hpf-withdraw-rent-2023.md"]
    _, new_rent = DOCS["hpf-withdraw-rent.md"]
    assert "每人每月最高提取1200元" in old_rent and "每人每月最高提取1500元" in new_rent
    old_time = _sections(DOCS["mortgage-registration-2023.md"][1])["办理时限"]
    new_time = _sections(DOCS["mortgage-registration.md"][1])["办理时限"]
    assert "5个工作日" in old_time and "1个工作日" in new_time


def test_faq_entries_are_well_formed() -> None:
    assert len(FAQ) >= 80
    ids = [entry["id"] for entry in FAQ]
    assert all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    assert len(set(ids)) == len(ids)
    questions = Counter(entry["question"] for entry in FAQ)
    assert [q for q, n in questions.items() if n > 1] == []
    for entry in FAQ:
        where = f"faq {entry['id']}"
        assert isinstance(entry["category"], str) and entry["category"], where
        assert isinstance(entry["question"], str) and CJK.search(entry["question"]), where
        assert isinstance(entry["answer"], str) and 40 <= len(entry["answer"]) <= 150, where
        similar = entry.get("similar_questions", [])
        assert isinstance(similar, list) and 2 <= len(similar) <= 4, where
        assert all(isinstance(s, str) and s and s != entry["question"] for s in similar), where


def test_faq_documents_exist_and_are_current() -> None:
    for entry in FAQ:
        doc = entry.get("doc")
        assert doc in DOCS, f"faq {entry['id']}: unknown doc {doc!r}"
        # Curated answers follow the policy in force, never a superseded one.
        assert doc not in EXPIRED_DOCS, f"faq {entry['id']} cites expired {doc}"


def test_every_current_document_has_an_faq_entry() -> None:
    cited = {entry["doc"] for entry in FAQ}
    uncovered = set(DOCS) - set(EXPIRED_DOCS) - cited
    assert uncovered == set()


def _gold_ids(query: dict[str, Any]) -> list[int]:
    gold = query["faq_id"]
    return gold if isinstance(gold, list) else [gold]


def test_queries_point_at_existing_faq_entries() -> None:
    assert len(QUERIES) >= 150
    qids = [q["qid"] for q in QUERIES]
    assert len(set(qids)) == len(qids)
    faq_ids = {entry["id"] for entry in FAQ}
    for query in QUERIES:
        assert set(_gold_ids(query)) <= faq_ids, f"query {query['qid']}"
        assert query["tag"] in QUERY_TAGS, f"query {query['qid']}: tag {query['tag']!r}"


def test_queries_are_not_copies_of_indexed_text() -> None:
    indexed = {entry["question"] for entry in FAQ}
    indexed |= {s for entry in FAQ for s in entry.get("similar_questions", [])}
    texts = [q["query"] for q in QUERIES]
    assert len(set(texts)) == len(texts)
    assert [t for t in texts if t in indexed] == []


def test_query_tags_are_spread_and_match_their_text() -> None:
    counts = Counter(q["tag"] for q in QUERIES)
    assert set(counts) == QUERY_TAGS
    assert min(counts.values()) >= 10, counts
    for query in QUERIES:
        text, tag = query["query"], query["tag"]
        if tag in {"en", "pinyin"}:
            assert re.search(r"[A-Za-z]{2,}", text), f"query {query['qid']}: no Latin letters"
        if tag == "trad":
            assert set(text) & TRADITIONAL_ONLY, f"query {query['qid']}: no traditional character"


def test_faq_coverage_by_queries() -> None:
    covered = {i for q in QUERIES for i in _gold_ids(q)}
    assert len(covered) >= 0.9 * len(FAQ)


def test_unanswerable_queries() -> None:
    assert len(UNANSWERABLE) >= 40
    qids = [q["qid"] for q in UNANSWERABLE]
    assert len(set(qids)) == len(qids)
    answerable = {q["query"] for q in QUERIES} | {entry["question"] for entry in FAQ}
    texts = [q["query"] for q in UNANSWERABLE]
    assert len(set(texts)) == len(texts)
    assert [t for t in texts if t in answerable] == []
    assert all(CJK.search(t) for t in texts)
