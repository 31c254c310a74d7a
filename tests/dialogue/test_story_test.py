"""Conversation tests through the real engine: the fixture project's trained NLU and its rules and stories."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.agent import Agent, build_agent
from assistant.policies import default_registry
from assistant.rasa_yaml import load_story_files
from assistant.store import InMemoryTrackerStore
from assistant.story_test import format_report, run_test_stories, score_actions
from nlu.persistence import load_interpreter, train


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_dir) -> Path:
    target = tmp_path_factory.mktemp("stories") / "project"
    shutil.copytree(project_dir, target)
    return target


@pytest.fixture(scope="module")
def agent(project) -> Agent:
    from assistant.config import load_config

    interpreter = load_interpreter(train(project, load_config(project), encoder_factory=None), encoder_factory=None)
    return build_agent(project, interpreter, store=InMemoryTrackerStore(), policy_registry=default_registry())


def run(agent: Agent, path: Path):
    data = load_story_files([path])
    return asyncio.run(run_test_stories(agent, data.stories)), data


def test_fixture_stories_pass(agent, project):
    report, _ = run(agent, project / "tests" / "test_stories.yml")
    assert [r.story for r in report.results if not r.passed] == []
    assert report.story_accuracy == 1.0 and report.intent_accuracy == 1.0
    assert report.overall.f1 == 1.0 and report.overall.support == 7


def test_failures_name_the_first_diverging_step(agent, project):
    report, data = run(agent, project / "tests" / "failing_stories.yml")
    failed = {r.story: str(r.divergence) for r in report.failed}
    assert failed == {
        "wrong action": "step 2: expected action utter_goodbye, got action utter_greet",
        "wrong intent": "step 1: expected intent goodbye for '你好', got intent greet",
        "wrong slot value": 'step 2: expected slot phone="13800000000", got phone="13912345678"',
    }
    assert report.story_accuracy == pytest.approx(1 / 4)
    text = format_report(report, data.unsupported)
    assert "1/4 passed" in text and "FAILED / 失败: story 'wrong action'" in text
    assert "end-to-end" in text  # the unreadable story is reported, not skipped silently
    per_action = report.per_action
    assert per_action["utter_goodbye"].recall == 0.0
    assert per_action["utter_greet"].precision == pytest.approx(2 / 3)


def test_action_scores_align_turn_sequences():
    from assistant.story_test import StoryResult

    r = StoryResult("s", "f", None, ("a", "b", "c"), ("a", "x", "c", "d"), ())
    per_action, overall = score_actions([r])
    assert overall.precision == pytest.approx(2 / 4) and overall.recall == pytest.approx(2 / 3)
    assert per_action["b"].recall == 0.0 and per_action["x"].precision == 0.0


@pytest.mark.slow
def test_cli_runs_the_project_and_exits_non_zero_on_failure(project):
    from assistant.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["test", "--project", str(project)])
    assert ok.exit_code == 0, ok.output
    assert "5/5 passed" in ok.output
    bad = runner.invoke(app, ["test", "--project", str(project), "--stories", str(project / "tests" / "failing_stories.yml")])
    assert bad.exit_code == 1
    assert "step 2: expected action utter_goodbye" in bad.output
