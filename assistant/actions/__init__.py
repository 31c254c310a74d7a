"""Actions: what the engine does once a policy has chosen. One protocol, one registry by name.

An action reads an ``ActionContext`` and returns events; it never changes the tracker or sends anything itself
(the agent applies, persists and renders the events).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from assistant.domain import Domain
from assistant.events import BotUttered, Event
from assistant.nlg import NLG
from assistant.tracker import Tracker

if TYPE_CHECKING:
    from assistant.config import ProjectConfig
    from assistant.policies import Prediction


class KnowledgeSearch(Protocol):
    """What the engine needs of ``knowledge.service.KnowledgeService``."""

    def search(self, query: str, k: int = ...) -> Any: ...


@dataclass(frozen=True)
class ActionContext:
    tracker: Tracker
    domain: Domain
    nlg: NLG
    knowledge: KnowledgeSearch | None
    now: datetime  # aware, Asia/Shanghai
    config: ProjectConfig | None = None
    prediction: Prediction | None = None  # why this action runs (policy, confidence, hints)


@runtime_checkable
class Action(Protocol):
    name: str

    async def run(self, ctx: ActionContext) -> list[Event]: ...


class UnknownActionError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"action {self.name!r} is not registered / 动作未注册"


@dataclass(frozen=True)
class ResponseAction:
    """``utter_*``: render the domain response of the same name."""

    name: str

    async def run(self, ctx: ActionContext) -> list[Event]:
        channel = ctx.tracker.state.latest_input_channel
        message = ctx.nlg.generate(self.name, ctx.tracker.slots, channel)
        if message is None:
            return []
        return [BotUttered(message.text, message.event_data(), {"utter_action": self.name})]


class ActionRegistry:
    """Actions by name: built-ins, one response action per ``utter_*`` response, and anything registered."""

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._actions: dict[str, Action] = {}
        for a in actions:
            self.register(a)

    @staticmethod
    def for_domain(domain: Domain, extra: Iterable[Action] = ()) -> ActionRegistry:
        from assistant.actions.builtin import builtin_actions

        registry = ActionRegistry(builtin_actions())
        for name in domain.responses:
            if name.startswith("utter_"):
                registry.register(ResponseAction(name))
        for a in extra:
            registry.register(a)
        return registry

    def register(self, action: Action, name: str | None = None) -> None:
        """Add or replace an action; a later registration wins (projects may override built-ins)."""
        self._actions[name or action.name] = action

    def get(self, name: str) -> Action:
        try:
            return self._actions[name]
        except KeyError:
            raise UnknownActionError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def names(self) -> tuple[str, ...]:
        return tuple(self._actions)

    def missing(self, domain: Domain) -> list[str]:
        """Actions and forms the domain names that nothing implements: reported at load time by name."""
        return [n for n in domain.action_names if n not in self._actions]

    def as_mapping(self) -> Mapping[str, Action]:
        return dict(self._actions)
