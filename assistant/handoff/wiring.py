"""Adding handoff to an engine: one function, called by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from assistant.agent import Agent
from assistant.calendar import HolidayCalendar, load_holiday_calendar
from assistant.handoff.actions import ALIASES, HandoffDeps, SessionStartKeepingHandoff, handoff_actions
from assistant.handoff.bus import Bus
from assistant.handoff.config import HandoffConfig
from assistant.handoff.hours import ServiceHours
from assistant.handoff.policy import HandoffPolicy
from assistant.handoff.service import Deliver, HandoffService
from assistant.handoff.store import HandoffStore


def install_handoff(
    agent: Agent,
    config: HandoffConfig,
    database_url: str,
    *,
    base_dir: Path | None = None,
    deliver: Deliver | None = None,
    holidays: HolidayCalendar | None = None,
    clock: Callable[[], float] = time.time,
    bus: Bus | None = None,
) -> HandoffService:
    store = HandoffStore(database_url, base_dir)
    hours = ServiceHours(config.service_hours, holidays if holidays is not None else load_holiday_calendar())
    deps = HandoffDeps(store, bus or Bus(), config, hours)
    if config.enabled:
        agent.ensemble.add(HandoffPolicy(config))
        for action in handoff_actions(deps):
            agent.actions.register(action)
        for alias, target in ALIASES.items():
            agent.actions.register(agent.actions.get(target), alias)
        if "action_session_start" in agent.actions:
            agent.actions.register(SessionStartKeepingHandoff(agent.actions.get("action_session_start"), deps))
        # build_agent reported the domain's handoff action as missing before it was registered here
        agent.ensemble.warnings = tuple(
            w for w in agent.ensemble.warnings if not any(w.startswith(f"action {a!r} ") for a in ALIASES)
        )
    service = HandoffService(agent, deps, deliver, clock)
    agent.paused_hooks.append(service.on_paused)
    return service
