"""Prints how long the rule extractors take on a typical message: ``python -m nlu.extractors.bench``.

A figure to read, not a test: timings on a shared machine are too noisy to assert on.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from nlu.extractors import EXTRACTORS, resolve_overlaps
from nlu.normalize import normalize

SENTENCE = "我叫张三，想明天下午三点去朝阳区补办社保卡，电话13912345678"
SETTINGS: dict[str, dict[str, object]] = {
    "RegexEntityExtractor": {"patterns": [{"name": "postcode", "pattern": r"\b\d{6}\b"}]},
    "LookupEntityExtractor": {
        "tables": {"district": ["朝阳区", "海淀区", "东城区"], "service": ["社保卡补办"]}
    },
}


def main(rounds: int = 2000) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    extractors = [cls(**SETTINGS.get(name, {})) for name, cls in EXTRACTORS.items()]
    doc = normalize(SENTENCE)

    def run_all() -> None:
        found = []
        for ex in extractors:
            found += ex.extract(doc, now)
        resolve_overlaps(found)

    for _ in range(100):
        run_all()
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        run_all()
        samples.append(time.perf_counter() - t)
    samples.sort()
    p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99)]
    print(
        f"{len(SENTENCE)} chars, {len(extractors)} extractors + resolve_overlaps: "
        f"p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"
    )
    for name, ex in zip(EXTRACTORS, extractors, strict=True):
        t = time.perf_counter()
        for _ in range(rounds):
            ex.extract(doc, now)
        print(f"  {name:24s} {(time.perf_counter() - t) / rounds * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
