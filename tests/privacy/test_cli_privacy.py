"""``gov-assistant retention run`` and ``privacy export|erase`` on a project directory: output, exit codes and audit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from privacy_helpers import ID_NUMBER, LINKED_TABLES, NAME, PHONE, World
from typer.testing import CliRunner

from assistant.cli import app
from assistant.store import make_engine

DAY = 86_400.0


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, World]:
    (tmp_path / "config.yml").write_text("database:\n  url: sqlite:///var/cli.db\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'var' / 'cli.db'}"
    (tmp_path / "var").mkdir()
    w = World.open(url, make_engine(url))
    now = time.time()
    w.conversation("old", now - 200 * DAY)
    w.conversation("citizen-1", now - 2 * DAY)
    w.ticket("citizen-1", now - 2 * DAY, handled=False)
    return tmp_path, w


def test_retention_run_dry_run_then_for_real(project: tuple[Path, World]) -> None:
    path, w = project
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "run", "--project", str(path), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] and report["conversations"] == 1 and report["deleted"]["dialogue_events"] == 9
    assert w.count("dialogue_events", "old") == 9

    real = runner.invoke(app, ["retention", "run", "--project", str(path)])
    assert real.exit_code == 0, real.output
    assert "1 个会话" in real.stdout and "dialogue_events\t9" in real.stdout
    assert w.count("dialogue_events", "old") == 0 and w.count("dialogue_events", "citizen-1") == 9
    [entry] = w.audit("retention.run")
    assert entry["actor"].startswith("cli")

    short = runner.invoke(app, ["retention", "run", "--project", str(path), "--days", "1", "--json"])
    assert short.exit_code == 0 and json.loads(short.stdout)["kept"] == {"open_ticket": 1}
    bad = runner.invoke(app, ["retention", "run", "--project", str(path), "--days", "0"])
    assert bad.exit_code == 2


def test_export_to_a_file_and_to_stdout(project: tuple[Path, World]) -> None:
    path, w = project
    runner = CliRunner()
    out = path / "export.json"
    done = runner.invoke(app, ["privacy", "export", "citizen-1", "--project", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text(encoding="utf-8")
    assert NAME in text and ID_NUMBER in text and PHONE in text
    doc = json.loads(text)
    assert doc["conversation_id"] == "citizen-1" and len(doc["events"]) == 9 and len(doc["handoff_tickets"]) == 1

    piped = runner.invoke(app, ["privacy", "export", "citizen-1", "--project", str(path)])
    assert piped.exit_code == 0 and json.loads(piped.stdout)["events"] == doc["events"]
    assert len(w.audit("privacy.export")) == 2


def test_erase_asks_first_and_unknown_ids_fail(project: tuple[Path, World]) -> None:
    path, w = project
    runner = CliRunner()
    declined = runner.invoke(app, ["privacy", "erase", "citizen-1", "--project", str(path)], input="n\n")
    assert declined.exit_code == 1 and w.count("dialogue_events", "citizen-1") == 9

    erased = runner.invoke(app, ["privacy", "erase", "citizen-1", "--project", str(path)], input="y\n")
    assert erased.exit_code == 0, erased.output
    assert w.rows_about("citizen-1") == dict.fromkeys(LINKED_TABLES, 0)
    [entry] = w.audit("privacy.erase")
    assert entry["target"] == "citizen-1" and entry["actor"].startswith("cli")

    for args in (["privacy", "erase", "citizen-1", "--yes"], ["privacy", "export", "nobody"]):
        failed = runner.invoke(app, [*args, "--project", str(path)])
        assert failed.exit_code == 1
        assert "没有找到会话" in failed.stderr and "nothing is stored" in failed.stderr
