"""The pieces on their own: service hours, triggers, the policy's decisions, accounts and the users CLI."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from assistant.accounts import AccountError, Accounts
from assistant.calendar import load_holiday_calendar
from assistant.events import ActionExecuted, BotUttered, UserUttered
from assistant.handoff.config import HandoffConfig, ServiceHoursConfig
from assistant.handoff.hours import ServiceHours
from assistant.handoff.policy import HandoffPolicy
from assistant.handoff.state import transition
from assistant.handoff.triggers import detect, is_cancel, parse_rating
from assistant.handoff.view import mask_text
from assistant.tracker import Tracker

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def hours() -> ServiceHours:
    return ServiceHours(ServiceHoursConfig(closed_dates=["2026-03-10"]), load_holiday_calendar())


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (datetime(2026, 3, 2, 9, 0, tzinfo=SH), True),  # Monday opening
        (datetime(2026, 3, 2, 8, 59, tzinfo=SH), False),
        (datetime(2026, 3, 2, 12, 30, tzinfo=SH), False),  # lunch break
        (datetime(2026, 3, 2, 17, 29, tzinfo=SH), True),
        (datetime(2026, 3, 2, 17, 30, tzinfo=SH), False),
        (datetime(2026, 3, 7, 10, 0, tzinfo=SH), False),  # Saturday
        (datetime(2026, 10, 2, 10, 0, tzinfo=SH), False),  # National Day holiday (a Friday)
        (datetime(2026, 10, 10, 10, 0, tzinfo=SH), True),  # 调休: a Saturday worked
        (datetime(2026, 3, 10, 10, 0, tzinfo=SH), False),  # an extra closure
        (datetime(2026, 3, 2, 1, 30, tzinfo=ZoneInfo("UTC")), True),  # 09:30 in Shanghai
    ],
)
def test_service_hours(hours: ServiceHours, moment: datetime, open_: bool) -> None:
    assert hours.is_open(moment) is open_


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (datetime(2026, 11, 28, 9, 40, tzinfo=SH), True),  # an ordinary Saturday morning
        (datetime(2026, 11, 28, 13, 0, tzinfo=SH), False),  # ... and its afternoon
        (datetime(2026, 11, 29, 10, 0, tzinfo=SH), False),  # Sunday
        (datetime(2026, 10, 3, 10, 0, tzinfo=SH), False),  # a Saturday inside the National Day holiday
        (datetime(2026, 10, 10, 15, 0, tzinfo=SH), True),  # 调休 Saturday: a weekday's hours
    ],
)
def test_saturday_hours_apply_on_ordinary_saturdays_only(moment: datetime, open_: bool) -> None:
    weekdays = {d: ["09:00-12:00", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")}
    hours = ServiceHours(ServiceHoursConfig(weekly={**weekdays, "sat": ["09:00-12:00"]}), load_holiday_calendar())
    assert hours.is_open(moment) is open_


def test_next_opening(hours: ServiceHours) -> None:
    assert hours.next_open(datetime(2026, 9, 30, 18, 0, tzinfo=SH)) == datetime(2026, 10, 8, 9, 0, tzinfo=SH)
    assert hours.next_open(datetime(2026, 3, 2, 12, 0, tzinfo=SH)) == datetime(2026, 3, 2, 13, 30, tzinfo=SH)
    assert "工作日 09:00-12:00、13:30-17:30" in hours.describe()


def test_hours_config_is_checked() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        ServiceHoursConfig(weekly={"mon": ["9-17"]})
    with pytest.raises(ValueError, match="weekday"):
        ServiceHoursConfig(weekly={"monday": ["09:00-17:00"]})


def msg(text: str, intent: str | None = None, confidence: float = 0.95) -> dict[str, object]:
    return {"text": text, "intent": {"name": intent, "confidence": confidence} if intent else {}}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (msg("转人工"), "request"),
        (msg("轉人工客服"), "request"),
        (msg("找 客 服"), "request"),
        (msg("ＲＥＧ人工服务"), "request"),
        (msg("让工作人员跟我说", "request_human"), "request"),
        (msg("窗口态度太差了", "complain"), "complaint"),
        (msg("我要举报"), "complaint"),
        (msg("紧急！我要投诉"), "urgent"),
        (msg("我想和人聊聊", "request_human", 0.3), None),  # too unsure to act on the intent alone
        (msg("社保卡怎么办", "ask_materials"), None),
    ],
)
def test_triggers(message: dict[str, object], reason: str | None) -> None:
    found = detect(message, HandoffConfig())
    assert (found.reason if found else None) == reason


def test_configured_triggers() -> None:
    config = HandoffConfig.model_validate({"triggers": {"urgent_keywords": ["煤气泄漏"], "complaint_intents": []}})
    assert detect(msg("家里煤气泄漏了"), config).reason == "urgent"
    assert detect(msg("服务太差", "complain"), config) is None


def test_cancel_and_rating_parsing() -> None:
    config = HandoffConfig()
    assert is_cancel("/handoff_cancel", config) and is_cancel("取消", config) and is_cancel("不等了！", config)
    assert not is_cancel("取消预约后还能再预约吗？我想问一下具体的规定", config)
    assert parse_rating(msg("５分")) == 5 and parse_rating(msg("三星")) == 3 and parse_rating(msg("1")) == 1
    assert parse_rating(msg("6")) is None and parse_rating(msg("5月3日")) is None
    assert parse_rating({"text": "/handoff_rate", "intent": {"name": "handoff_rate"},
                         "entities": [{"entity": "rating", "value": 4}]}) == 4


def test_masking_free_text() -> None:
    assert mask_text("身份证110101199003071233，手机+86 139-1234-5678") == "身份证1101**********1233，手机139****5678"
    assert mask_text("预约号12345，金额3000元") == "预约号12345，金额3000元"


def tracker(*events: object) -> Tracker:
    return Tracker("c", tuple(events))  # type: ignore[arg-type]


def listen() -> ActionExecuted:
    return ActionExecuted("action_listen")


def test_policy_decisions() -> None:
    p = HandoffPolicy(HandoffConfig())
    ask = UserUttered("转人工", msg("转人工", "request_human"))
    assert p.predict(tracker(listen(), ask), None).action == "action_handoff"  # type: ignore[arg-type, union-attr]
    assert p.predict(tracker(listen(), ask, ActionExecuted("action_handoff")), None).action == "action_listen"  # type: ignore[arg-type, union-attr]
    offered = (listen(), UserUttered("?", msg("?", "nlu_fallback", 1.0)), ActionExecuted("action_offer_human"),
               BotUttered("需要转人工吗"), listen())
    yes = UserUttered("好的", msg("好的", "affirm"))
    no = UserUttered("不用", msg("不用", "deny"))
    assert p.predict(tracker(*offered, yes), None).action == "action_handoff"  # type: ignore[arg-type, union-attr]
    assert p.predict(tracker(*offered, no), None) is None  # type: ignore[arg-type]
    closed = (transition("closed", "with_agent", "bot"), listen())
    assert p.predict(tracker(*closed, UserUttered("5", msg("5", "inform"))), None).action == "action_handoff_rate"  # type: ignore[arg-type, union-attr]
    awaiting = (transition("awaiting_message", "bot", "bot"), listen())
    assert p.predict(tracker(*awaiting, UserUttered("请回电", msg("请回电", "inform"))), None).action == "action_handoff_ticket"  # type: ignore[arg-type, union-attr]
    assert HandoffPolicy(HandoffConfig(enabled=False)).predict(tracker(listen(), ask), None) is None  # type: ignore[arg-type]


def test_accounts(tmp_path: Path) -> None:
    accounts = Accounts(f"sqlite:///{tmp_path / 'a.db'}")
    user = accounts.create_user("wang", "long-enough-pw", "agent", "王芳")
    row_hash = accounts.engine.connect().exec_driver_sql("select password_hash from staff_users").scalar()
    assert row_hash.startswith("$argon2id$") and "long-enough-pw" not in row_hash
    with pytest.raises(AccountError):
        accounts.create_user("wang", "long-enough-pw", "agent")
    with pytest.raises(AccountError):
        accounts.create_user("li", "short", "agent")
    with pytest.raises(AccountError):
        accounts.create_user("li", "long-enough-pw", "editor-in-chief")
    assert accounts.authenticate("wang", "wrong") is None
    assert accounts.authenticate("wang", "long-enough-pw") == user
    token, _csrf, _ = accounts.open_session(user)
    assert accounts.resolve(token)[0] == user
    stored = accounts.engine.connect().exec_driver_sql("select token_hash from staff_sessions").scalar()
    assert stored != token  # only a digest is kept
    accounts.reset_password("wang", "another-long-pw")
    assert accounts.resolve(token) is None  # sessions end with the old password
    assert accounts.authenticate("wang", "long-enough-pw") is None
    assert accounts.authenticate("wang", "another-long-pw") == user


def test_session_expiry(tmp_path: Path) -> None:
    now = [1000.0]
    accounts = Accounts(f"sqlite:///{tmp_path / 'a.db'}", session_hours=1, clock=lambda: now[0])
    user = accounts.create_user("wang", "long-enough-pw", "admin")
    token, _, _ = accounts.open_session(user)
    now[0] += 3599
    assert accounts.resolve(token) is not None
    now[0] += 2
    assert accounts.resolve(token) is None


def test_users_cli(tmp_path: Path) -> None:
    from assistant.cli import app

    (tmp_path / "config.yml").write_text("database:\n  url: sqlite:///var/cli.db\n", encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(app, ["users", "create", "zhao", "--role", "admin", "--name", "赵敏", "--password-stdin",
                            "-p", str(tmp_path)], input="long-enough-pw\n")
    assert r.exit_code == 0, r.output
    accounts = Accounts(f"sqlite:///{tmp_path / 'var' / 'cli.db'}")
    assert accounts.authenticate("zhao", "long-enough-pw").role == "admin"
    r = runner.invoke(app, ["users", "create", "zhao", "--password-stdin", "-p", str(tmp_path)], input="long-enough-pw\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(app, ["users", "reset-password", "zhao", "--password-stdin", "-p", str(tmp_path)], input="new-long-password\n")
    assert r.exit_code == 0 and accounts.authenticate("zhao", "new-long-password") is not None
    r = runner.invoke(app, ["users", "disable", "zhao", "-p", str(tmp_path)])
    assert r.exit_code == 0 and accounts.authenticate("zhao", "new-long-password") is None
    r = runner.invoke(app, ["users", "list", "-p", str(tmp_path)])
    assert "zhao\tadmin\t赵敏\t-\tdisabled" in r.output
    assert [e["action"] for e in accounts.audit_entries()][:3] == ["user.disable", "user.reset_password", "user.create"]


def test_teams_are_checked_and_the_demo_config_loads() -> None:
    from assistant.config import ConfigError, load_config, parse_config

    with pytest.raises(ConfigError, match="complaint_team"):
        parse_config({"handoff": {"complaint_team": "nobody"}})
    with pytest.raises(ConfigError, match="handoff.triggers.nonsense"):
        parse_config({"handoff": {"triggers": {"nonsense": []}}})
    demo = load_config(Path(__file__).resolve().parents[2])
    assert demo.handoff.complaint_team in demo.handoff.team_ids()
    assert "转人工" in demo.handoff.triggers.request_keywords
