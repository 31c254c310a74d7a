"""The demo's conversation tests (``tests/test_stories.yml``) pass through the real pipeline.

The demo project is assembled exactly as ``gov-assistant test`` assembles it (``connectors.server.build_runtime``:
trained NLU, rules and stories, the four forms with their rasa-sdk validators, the knowledge base, handoff), but in
a temporary copy so the run touches nothing of the checkout: its own database and index, an NLU model trained once
from the current ``data/nlu.yml``, and the demo back office started on a free port named in the copy's config,
so confirmed forms really are POSTed and the stories check the success path.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from demo_project import free_port

from assistant.agent import Agent, UserMessage
from assistant.cli_dialogue import build_engine, demo_backoffice
from assistant.rasa_yaml import ActionStep, LoopStep, SlotStep, Story, UserStep, load_story_files
from assistant.story_test import TestReport as StoryReport  # renamed: pytest would try to collect "Test…"
from assistant.story_test import format_report, run_test_stories

ROOT = Path(__file__).resolve().parents[2]
STORIES = ROOT / "tests" / "test_stories.yml"
FORMS = (
    "id_card_appointment",
    "social_security_card_loss_report",
    "residence_permit_application",
    "housing_fund_withdrawal_appointment",
)
# the documents the stories ask about; the whole knowledge base would only make seeding slower
KB_DOCS = (
    "appointment-rules.md",
    "citizen-centre.md",
    "district-halls.md",
    "idcard-renew.md",
    "idcard-loss.md",
    "sbk-loss-replace.md",
    "residence-permit-apply.md",
    "residence-permit-renew.md",
    "hpf-withdraw-purchase.md",
    "hpf-withdraw-rent.md",
    "hpf-withdraw-retire.md",
)
PROJECT_PARTS = ("domain.yml", "data", "actions", "endpoints.yml", "tests")


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from assistant.config import load_config
    from nlu.persistence import train

    project = tmp_path_factory.mktemp("demo")
    for name in PROJECT_PARTS:
        (project / name).symlink_to(ROOT / name)
    docs = project / "knowledge_base" / "docs"
    docs.mkdir(parents=True)
    for name in KB_DOCS:
        (docs / name).symlink_to(ROOT / "knowledge_base" / "docs" / name)
    (project / "knowledge_base" / "faq.jsonl").symlink_to(ROOT / "knowledge_base" / "faq.jsonl")
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    config["database"]["url"] = "sqlite:///var/stories.db"
    config["forms"]["submission"]["url"] = f"http://127.0.0.1:{free_port()}/submissions"
    (project / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    train(project, load_config(project))  # once, from the checkout's current data/nlu.yml
    return project


@pytest.fixture(scope="module")
def engine(demo_project: Path) -> Iterator[Agent]:
    with demo_backoffice(demo_project) as url:
        assert url is not None, "the demo back office did not start on the configured port"
        yield build_engine(demo_project)


@pytest.fixture(scope="module")
def stories() -> tuple[Story, ...]:
    data = load_story_files([STORIES])
    assert not data.unsupported, data.unsupported
    return data.stories


@pytest.fixture(scope="module")
def report(engine: Agent, stories: tuple[Story, ...]) -> StoryReport:
    return asyncio.run(run_test_stories(engine, stories))


def _actions(story: Story) -> set[str]:
    return {s.name for s in story.steps if isinstance(s, ActionStep)}


def _slots(story: Story) -> set[tuple[str, Any]]:
    return {
        (name, tuple(value) if isinstance(value, list) else value)
        for s in story.steps
        if isinstance(s, SlotStep)
        for name, value, _ in s.slots
    }


def test_the_demo_ships_at_least_40_stories_covering_every_form(stories: tuple[Story, ...]) -> None:
    assert len(stories) >= 40
    for form in FORMS:
        mine = [s for s in stories if form in _actions(s)]
        slots = set().union(*(_slots(s) for s in mine))
        loops = {s.name for story in mine for s in story.steps if isinstance(s, LoopStep)}
        assert ("form_phase", "cancel_confirm") in slots, f"{form}: no cancellation"
        assert ("form_phase", "confirm") in slots, f"{form}: never reaches its confirmation"
        assert any(name == "reference_number" for name, _ in slots), f"{form}: never submitted"
        assert None in loops, f"{form}: never closed"
        # a rejected answer: the field stays empty and is asked again
        assert any(value is None and name not in ("form_phase", "requested_slot") for name, value in slots), form
        assert any("action_knowledge_answer" in _actions(s) for s in mine), f"{form}: no question in the middle"
        assert ("paused_form", form) in slots, f"{form}: never paused"
        intents = {s.intent for story in mine for s in story.steps if isinstance(s, UserStep)}
        assert "correct_slot" in intents, f"{form}: no correction"


def test_every_demo_story_passes(report: StoryReport) -> None:
    assert not report.failed, format_report(report)
    assert report.overall.precision == 1.0 and report.overall.recall == 1.0, format_report(report)


def _say(agent: Agent, conversation: str, text: str) -> str:
    replies = asyncio.run(agent.handle(UserMessage(conversation, text, channel="test")))
    return "\n".join(r.text or "" for r in replies)


def test_confirmation_is_masked_and_success_gives_the_back_office_reference(engine: Agent) -> None:
    conversation = "masked-confirmation"
    _say(engine, conversation, "帮我预约换身份证")
    _say(engine, conversation, "我叫張偉，身份證１１０１０１１９９００３０７７５７１，電話139 1234 5678")
    _say(engine, conversation, "快过期了")
    _say(engine, conversation, "青川区")
    confirmation = _say(engine, conversation, "下周一上午")
    assert "1101**********7571" in confirmation and "139****5678" in confirmation, confirmation
    assert "110101199003077571" not in confirmation and "13912345678" not in confirmation
    done = _say(engine, conversation, "确认")
    assert re.search(r"YZ-\d{8}-\d{4}", done), done


@pytest.mark.parametrize("name", ["李四", "王小明"])
def test_a_bare_name_accepting_the_booking_offer_is_the_first_answer(engine: Agent, name: str) -> None:
    """The offer says "或直接告诉我申请人姓名就可以开始": the name that starts the form is kept, not asked again."""
    conversation = f"offer-then-name-{name}"
    offer = _say(engine, conversation, "社保卡丢了咋办")
    assert "直接告诉我申请人姓名" in offer, offer
    started = _say(engine, conversation, name)
    tracker = asyncio.run(engine.tracker(conversation))
    assert tracker.get_slot("applicant_name") == name
    assert tracker.get_slot("requested_slot") != "applicant_name" and "姓名" not in started, started


def test_accepting_the_offer_with_yes_asks_for_the_name(engine: Agent) -> None:
    conversation = "offer-then-yes"
    _say(engine, conversation, "社保卡丢了咋办")
    started = _say(engine, conversation, "好的")
    assert asyncio.run(engine.tracker(conversation)).get_slot("requested_slot") == "applicant_name", started
