"""The conversation engine's one entry point: ``Agent.handle(UserMessage) -> list[BotReply]``.

A turn is a chain of small steps: lock the conversation, load its events, start a session if needed, parse,
fill slots, then predict-and-run actions until the engine listens. Every step's events are appended to the
store as they happen (the user message before any action runs), so a crash mid-turn loses nothing already done.
Each append is fenced on the sequence number the turn's tracker reflects: a turn that stalled past its lock's
lease while another replica ran the conversation writes nothing more and fails with 503 (the channel retries).
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from assistant.actions import Action, ActionContext, ActionRegistry, KnowledgeSearch, UnknownActionError
from assistant.choices import NUMBERED_CHOICES, resolve_choice
from assistant.domain import Button, Domain
from assistant.errors import ApiError
from assistant.events import (
    ActionExecuted,
    ActionExecutionRejected,
    BotUttered,
    Event,
    SessionStarted,
    UserUttered,
)
from assistant.nlg import NLG
from assistant.policies import (
    PolicyBuildContext,
    PolicyEnsemble,
    PolicyError,
    PolicyFactory,
    Prediction,
    build_policies,
)
from assistant.slots import extract_slot_events
from assistant.store import ConversationMoved, ConversationReset, InMemoryLockStore, LockStore, TrackerStore
from assistant.tracker import ACTION_LISTEN, Tracker

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACTION_SESSION_START = "action_session_start"
ACTION_ERROR_TEXT = "抱歉，系统处理出错了，请稍后再试。(Sorry, something went wrong on our side. Please try again.)"


@dataclass(frozen=True)
class UserMessage:
    conversation_id: str
    text: str
    channel: str = "rest"
    message_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BotReply:
    text: str | None
    buttons: tuple[Button, ...] = ()
    citations: tuple[dict[str, Any], ...] = ()
    custom: dict[str, Any] | None = None
    image: str | None = None

    @staticmethod
    def from_event(event: BotUttered) -> BotReply:
        data = event.data
        return BotReply(
            text=event.text,
            buttons=tuple(Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in data.get("buttons") or []),
            citations=tuple(dict(c) for c in data.get("citations") or []),
            custom=data.get("custom"),
            image=data.get("image"),
        )


class Interpreter(Protocol):
    """``nlu.pipeline.Interpreter``: ``parse`` returns a ``nlu.types.ParseResult`` (anything with ``to_rasa()``)."""

    def parse(self, text: str, now: datetime | None = None) -> Any: ...


# after the slot mappings, further hooks may add events from the parsed message (e.g. conversation context)
SlotHook = Callable[[Domain, Tracker], list[Event]]
# while a human holds the conversation, each kept message goes to these (the handoff package relays it)
PausedHook = Callable[[Tracker], Awaitable[list[Event]]]

_PAYLOAD = re.compile(r"^/(?P<intent>[\w.\-]+)(?P<entities>\{.*\})?\s*$", re.DOTALL)


def parse_payload(text: str) -> dict[str, Any] | None:
    """``/intent`` or ``/intent{"slot": "value"}`` (a button press): Rasa's parse, bypassing NLU."""
    m = _PAYLOAD.match(text.strip())
    if m is None:
        return None
    entities = []
    if m.group("entities"):
        try:
            values = json.loads(m.group("entities"))
        except json.JSONDecodeError:
            return None
        if not isinstance(values, dict):
            return None
        for name, value in values.items():
            entities.append({"entity": name, "value": value, "start": 0, "end": len(text), "extractor": "payload"})
    intent = {"name": m.group("intent"), "confidence": 1.0}
    return {"text": text, "intent": intent, "entities": entities, "intent_ranking": [intent]}


def default_clock() -> datetime:
    return datetime.now(SHANGHAI)


def conversation_moved() -> ApiError:
    """The answer to a message whose turn another replica overtook (see ``Agent._fenced``): nothing of the rest of
    the turn was stored, and the same message sent again is answered from the conversation as it now is."""
    return ApiError(
        503,
        "conversation_moved",
        "会话已在别处更新，请重新发送该消息",
        "The conversation was updated elsewhere while this message was processed; send it again",
        {"Retry-After": "1"},
    )


class Agent:
    def __init__(
        self,
        domain: Domain,
        interpreter: Interpreter,
        ensemble: PolicyEnsemble,
        actions: ActionRegistry,
        store: TrackerStore,
        nlg: NLG,
        knowledge: KnowledgeSearch | None = None,
        clock: Callable[[], datetime] = default_clock,
        locks: LockStore | None = None,
        config: Any = None,
        slot_hooks: Sequence[SlotHook] = (),
        max_actions: int = 10,
        cache_size: int = 10_000,
        paused_hooks: Sequence[PausedHook] = (),
    ) -> None:
        self.domain = domain
        self.interpreter = interpreter
        self.ensemble = ensemble
        self.actions = actions
        self.store = store
        self.nlg = nlg
        self.knowledge = knowledge
        self.clock = clock
        self.locks: LockStore = locks or InMemoryLockStore()
        self.config = config
        self.slot_hooks = tuple(slot_hooks)
        self.max_actions = max_actions
        # trackers by conversation with the store's sequence number they reflect: a turn only reads new rows
        self._cache: OrderedDict[str, tuple[Tracker, int]] = OrderedDict()
        self._cache_size = cache_size
        self._slot_defaults = domain.slot_defaults
        # run for each message kept while a human holds the conversation (the handoff package relays it and may
        # answer, e.g. a cancel while queued); each returns events to append
        self.paused_hooks: list[PausedHook] = list(paused_hooks)

    # --- public ------------------------------------------------------------------------------------------
    @property
    def warnings(self) -> tuple[str, ...]:
        """What the project uses that the engine does not support, by name."""
        return self.ensemble.warnings

    def with_store(self, store: TrackerStore, locks: LockStore | None = None) -> Agent:
        """The same engine over another store (e.g. an in-memory one for conversation tests)."""
        return Agent(
            self.domain, self.interpreter, self.ensemble, self.actions, store, self.nlg, self.knowledge,
            self.clock, locks, self.config, self.slot_hooks, self.max_actions, self._cache_size, self.paused_hooks,
        )

    async def handle(self, message: UserMessage) -> list[BotReply]:
        async with self.locks.lock(message.conversation_id):
            with self._fenced(message.conversation_id):
                turn = _Turn(self, *self._load_with_seq(message.conversation_id))
                # checked under the conversation's lock, so a retry landing on another replica at the same time
                # still sees the first delivery: a message with an id is taken once
                earlier = await turn.replay(message.message_id) if message.message_id else None
                if earlier is not None:
                    return earlier
                await turn.run(message)
                return [BotReply.from_event(e) for e in turn.uttered]

    async def tracker(self, conversation_id: str) -> Tracker:
        async with self.locks.lock(conversation_id):
            return self._load(conversation_id)

    async def execute(self, conversation_id: str, action_name: str) -> list[BotReply]:
        """Run one action outside a user turn (e.g. a staff hand-back or a scheduled reminder), then predict on."""
        async with self.locks.lock(conversation_id):
            with self._fenced(conversation_id):
                turn = _Turn(self, *self._load_with_seq(conversation_id))
                await turn.act(Prediction(action_name, 1.0, "external"))
                await turn.predict_loop()
                return [BotReply.from_event(e) for e in turn.uttered]

    # --- storage -----------------------------------------------------------------------------------------
    @contextmanager
    def _fenced(self, conversation_id: str) -> Iterator[None]:
        """Held around a turn: when the store refuses a write because another replica wrote first (this one
        stalled past the lock's lease), the cached tracker is dropped and the message fails with a retryable 503.
        A retry with the same message id is then taken as usual: new if none of its turn was stored, otherwise
        finished or answered by ``_Turn.replay``."""
        try:
            yield
        except ConversationMoved:
            self.forget(conversation_id)
            log.warning("conversation %s: another replica wrote while this turn ran (stalled past the lock's "
                        "lease); the rest of the turn was not stored", conversation_id)
            raise conversation_moved() from None

    def _load(self, conversation_id: str) -> Tracker:
        return self._load_with_seq(conversation_id)[0]

    def _load_with_seq(self, conversation_id: str) -> tuple[Tracker, int]:
        """The conversation's tracker and the store's sequence number it reflects (what its writes are fenced on)."""
        cached = self._cache.get(conversation_id)
        if cached is None:
            new, seq = self.store.load_after(conversation_id, 0)
            tracker = Tracker(conversation_id, (), self._slot_defaults).with_events(new)
        else:
            tracker, seq = cached
            try:
                new, seq = self.store.load_after(conversation_id, seq)
            except ConversationReset:
                # erased or trimmed since this process cached it (privacy erase, retention): rebuild from what
                # the store still holds (nothing after an erase: the citizen starts afresh)
                new, seq = self.store.load_after(conversation_id, 0)
                tracker = Tracker(conversation_id, (), self._slot_defaults)
            if new:
                tracker = tracker.with_events(new)
        self._remember(conversation_id, tracker, seq)
        return tracker, seq

    def forget(self, conversation_id: str) -> None:
        """Drop the cached tracker (and the store's cached tail) of a conversation that was erased, or written by
        another replica while this one's turn stalled."""
        self._cache.pop(conversation_id, None)
        forget = getattr(self.store, "forget", None)
        if forget is not None:
            forget(conversation_id)

    def _remember(self, conversation_id: str, tracker: Tracker, seq: int) -> None:
        self._cache[conversation_id] = (tracker, seq)
        self._cache.move_to_end(conversation_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _persist(self, tracker: Tracker, seq: int, events: Sequence[Event]) -> tuple[Tracker, int]:
        """Append ``events`` right after event ``seq`` (what ``tracker`` reflects), or raise ``ConversationMoved``."""
        seq = self.store.append(tracker.conversation_id, events, after=seq)
        updated = tracker.with_events(events)
        self._remember(tracker.conversation_id, updated, seq)
        return updated, seq


class _Turn:
    """One message's processing: the mutable working state of ``Agent.handle`` (never shared)."""

    def __init__(self, agent: Agent, tracker: Tracker, seq: int) -> None:
        self.agent = agent
        self.tracker = tracker
        # the store's sequence number ``tracker`` reflects: each write goes right after it or not at all
        self.seq = seq
        self.uttered: list[BotUttered] = []

    def context(self, prediction: Prediction | None = None) -> ActionContext:
        a = self.agent
        return ActionContext(self.tracker, a.domain, a.nlg, a.knowledge, a.clock(), a.config, prediction)

    def persist(self, events: Sequence[Event]) -> None:
        self.tracker, self.seq = self.agent._persist(self.tracker, self.seq, events)
        self.uttered.extend(e for e in events if isinstance(e, BotUttered))

    async def run(self, message: UserMessage) -> None:
        await self.start_session_if_needed()
        if self.tracker.paused:
            # a staff member holds the conversation: keep the message, the handoff package relays it
            self.persist([self.user_event(message, None)])
            for hook in self.agent.paused_hooks:
                self.persist(await hook(self.tracker))
            return
        if message.metadata.get(NUMBERED_CHOICES):
            chosen = resolve_choice(self.tracker, message.text)
            if chosen is not None:  # "2" on WeChat: the second button offered, as if it had been pressed
                message = replace(message, text=chosen, metadata={**message.metadata, "typed": message.text})
        parse_data = self.parse(message)
        user = self.user_event(message, parse_data)
        staged = self.tracker.with_events([user])
        slot_events: list[Event] = list(extract_slot_events(self.agent.domain, staged))
        staged = staged.with_events(slot_events)
        for hook in self.agent.slot_hooks:
            extra = hook(self.agent.domain, staged)
            staged = staged.with_events(extra)
            slot_events += extra
        # the message and what it fills are committed together, before any action runs
        self.persist([user, *slot_events])
        await self.predict_loop()

    async def replay(self, message_id: str) -> list[BotReply] | None:
        """None for a new message id. For one already taken (the sender retried, maybe through another replica):
        the replies it got, after finishing its turn if the process running it died before the engine listened
        again (the message and its slots were committed first, so the turn resumes where it stopped)."""
        events = self.tracker.events
        index = next(
            (i for i in range(len(events) - 1, -1, -1)
             if isinstance(events[i], UserUttered) and events[i].message_id == message_id),
            None,
        )
        if index is None:
            return None
        after = events[index + 1 :]
        last_message = not any(isinstance(e, UserUttered) for e in after)
        finished = any(isinstance(e, ActionExecuted) and e.action_name == ACTION_LISTEN for e in after)
        # a message kept while staff hold the conversation has no listen after it: nothing to resume
        if last_message and not finished and not self.tracker.paused:
            log.info("conversation %s: resuming a turn interrupted before it finished", self.tracker.conversation_id)
            await self.predict_loop()
        replies: list[BotReply] = []
        for e in after:
            if isinstance(e, UserUttered):
                break
            if isinstance(e, BotUttered):
                replies.append(BotReply.from_event(e))
        return replies + [BotReply.from_event(e) for e in self.uttered]

    def user_event(self, message: UserMessage, parse_data: dict[str, Any] | None) -> UserUttered:
        return UserUttered(
            message.text,
            parse_data or {"text": message.text},
            message.channel,
            message.message_id,
            dict(message.metadata),
            timestamp=self.agent.clock().timestamp(),
        )

    def parse(self, message: UserMessage) -> dict[str, Any]:
        payload = parse_payload(message.text)
        if payload is not None:
            return payload
        result = self.agent.interpreter.parse(message.text, now=self.agent.clock())
        data = result.to_rasa() if hasattr(result, "to_rasa") else dict(result)
        data["text"] = message.text
        return data

    def session_expired(self) -> bool:
        events = self.tracker.events
        if not any(isinstance(e, SessionStarted) for e in events):
            return True
        minutes = self.agent.domain.session_config.session_expiration_time
        if minutes <= 0:
            return False
        # inactivity is measured from the citizen's last message (stamped by the agent's clock)
        last = self.tracker.latest_user_event()
        since = last.timestamp if last is not None else events[-1].timestamp
        return self.agent.clock().timestamp() - since > minutes * 60

    async def start_session_if_needed(self) -> None:
        if self.session_expired():
            await self.act(Prediction(ACTION_SESSION_START, 1.0, "session"))
            self.persist([ActionExecuted(ACTION_LISTEN, "session", 1.0)])

    async def predict_loop(self) -> None:
        for _ in range(self.agent.max_actions):
            prediction = self.agent.ensemble.predict(self.tracker, self.agent.domain)
            if prediction.action == ACTION_LISTEN:
                break
            if not await self.act(prediction):
                break  # one apology per turn: a policy predicting the failed action again must not loop
        else:
            log.warning("conversation %s: %d actions without listening; stopping", self.tracker.conversation_id,
                        self.agent.max_actions)
        self.persist([ActionExecuted(ACTION_LISTEN, "ensemble", 1.0)])

    async def act(self, prediction: Prediction) -> bool:
        """Run one action and persist its events; False when it failed (and the citizen got an apology)."""
        name = prediction.action
        executed = ActionExecuted(name, prediction.policy, prediction.confidence)
        ok = True
        try:
            action = self.agent.actions.get(name)
            events = list(await action.run(self.context(prediction)))
        except UnknownActionError:
            log.error("conversation %s: action %s is not registered", self.tracker.conversation_id, name)
            events, ok = [BotUttered(ACTION_ERROR_TEXT, {}, {"error": "unknown_action", "action": name})], False
        except Exception:
            # an action's failure must not lose the conversation: record it and apologise
            log.exception("conversation %s: action %s failed", self.tracker.conversation_id, name)
            events, ok = [BotUttered(ACTION_ERROR_TEXT, {}, {"error": "action_failed", "action": name})], False
        if any(isinstance(e, ActionExecutionRejected) and e.action_name == name for e in events):
            self.persist(events)
            return True
        self.persist([executed, *events])
        return ok


def _domain_path(project: Path) -> Path:
    path = project / "domain.yml"
    if not path.exists() and (project / "domain").is_dir():
        return project / "domain"
    return path


def check_project(
    project: str | Path, policy_registry: Mapping[str, PolicyFactory] | None = None
) -> list[str]:
    """What a Rasa-shaped project uses that the engine does not support, by name (unsupported policies, end-to-end
    stories, domain features), without loading any model: for ``gov-assistant train`` to report at train time.
    Invalid content raises (``ConfigError``, ``DomainError``, ``StoryError``, ``PolicyError``)."""
    from assistant.config import load_config
    from assistant.rasa_yaml import load_story_files

    project = Path(project)
    config = load_config(project)
    domain = Domain.load(_domain_path(project))
    story_data = load_story_files([project / "data"])
    _, policy_warnings = build_policies(config.policies, PolicyBuildContext(domain, story_data), policy_registry)
    return [*domain.warnings, *story_data.unsupported, *policy_warnings]


def build_agent(
    project: str | Path,
    interpreter: Interpreter,
    *,
    knowledge: KnowledgeSearch | None = None,
    store: TrackerStore | None = None,
    locks: LockStore | None = None,
    extra_actions: Sequence[Action] = (),
    policy_registry: Mapping[str, PolicyFactory] | None = None,
    clock: Callable[[], datetime] = default_clock,
    nlg_seed: int | None = None,
    strict: bool = False,
) -> Agent:
    """An agent for a Rasa-shaped project directory: ``config.yml``, ``domain.yml`` (or ``domain/``),
    ``data/`` rules and stories. What the project uses but the engine does not support is logged by name and
    kept in ``agent.warnings`` (``strict`` makes it an error)."""
    from assistant.actions.knowledge import service_context
    from assistant.config import load_config
    from assistant.rasa_yaml import load_story_files
    from assistant.store import SQLTrackerStore

    project = Path(project)
    config = load_config(project)
    domain = Domain.load(_domain_path(project))
    story_data = load_story_files([project / "data"])
    warnings = [*domain.warnings, *story_data.unsupported]
    if strict and story_data.unsupported:
        raise PolicyError("\n".join(story_data.unsupported))
    policies, policy_warnings = build_policies(
        config.policies, PolicyBuildContext(domain, story_data, knowledge), policy_registry, strict
    )
    warnings += policy_warnings
    actions = ActionRegistry.for_domain(domain, extra_actions)
    warnings += [f"action {name!r} is named in the domain but not implemented / 动作未实现" for name in actions.missing(domain)]
    for w in warnings:
        log.warning("%s", w)
    agent = Agent(
        domain,
        interpreter,
        PolicyEnsemble(policies, warnings),
        actions,
        store or SQLTrackerStore(config.database.url, base_dir=project),
        NLG(domain, nlg_seed),
        knowledge,
        clock,
        locks,
        config,
        slot_hooks=(service_context,),
    )
    return agent
