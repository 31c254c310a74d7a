"""rasa-sdk custom actions: run in this process from the project's ``actions/`` package, or on an action server.

Both runners take the same inputs Rasa sends an action server (tracker JSON and domain dict) and return the same
outputs (event dicts and response dicts), so an action behaves identically whichever way it is deployed.
``RasaSdkAction`` adapts either runner to the engine's ``Action`` protocol.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import pkgutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


def _sdk_version() -> str:
    # Rasa sends its own version and rasa-sdk warns when major.minor differ; we speak the protocol of the
    # rasa-sdk this project installs, so we announce that version.
    try:
        return metadata.version("rasa-sdk")
    except metadata.PackageNotFoundError:
        return "3.6.0"


@dataclass(frozen=True)
class CustomActionResult:
    """What an action returned: rasa-sdk event dicts and ``dispatcher.utter_message`` dicts."""

    events: list[JsonDict] = field(default_factory=list)
    responses: list[JsonDict] = field(default_factory=list)


class CustomActionError(Exception):
    """A custom action could not run. ``code`` is stable; messages are bilingual."""

    def __init__(self, code: str, action_name: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {action_name}: {message_en}")
        self.code = code
        self.action_name = action_name
        self.message_zh = message_zh
        self.message_en = message_en


class ActionRejected(CustomActionError):
    """The action refused to run (rasa-sdk ``ActionExecutionRejection``, HTTP 400): the engine should let
    another policy act, as Rasa does with ``action_execution_rejected``."""


class CustomActionRunner(Protocol):
    def names(self) -> frozenset[str]: ...

    async def run(self, action_name: str, tracker: JsonDict, domain: JsonDict) -> CustomActionResult: ...


# ---------------------------------------------------------------------------------------------- in process


def _import_package(project: Path, package: str) -> list[ModuleType]:
    """Import ``project/package`` and all its submodules under the package's own name.

    Registered in ``sys.modules`` because action modules import each other (``from .helpers import x``).
    A package of the same name already imported from another directory is replaced, so two projects loaded
    one after the other in one process (tests) each get their own actions.
    """
    pkg_dir = (project / package).resolve()
    init = pkg_dir / "__init__.py"
    if not init.exists():
        raise FileNotFoundError(f"{init}: no actions package / 找不到自定义动作包")
    existing = sys.modules.get(package)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() != init:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package, init, submodule_search_locations=[str(pkg_dir)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[package]
            raise
    root = sys.modules[package]
    modules = [root]
    for info in pkgutil.walk_packages([str(pkg_dir)], prefix=package + "."):
        modules.append(importlib.import_module(info.name))
    return modules


def discover_actions(modules: list[ModuleType]) -> dict[str, Any]:
    """Instances of every concrete ``rasa_sdk.Action`` subclass defined in ``modules``, by action name."""
    from rasa_sdk import Action

    found: dict[str, Any] = {}
    for module in modules:
        for obj in vars(module).values():
            if not (inspect.isclass(obj) and issubclass(obj, Action) and obj.__module__ == module.__name__):
                continue
            if inspect.isabstract(obj):
                continue
            instance = obj()
            try:
                name = instance.name()
            except NotImplementedError:
                continue  # an intermediate base class of the project's own
            if name in found and type(found[name]) is not obj:
                raise ValueError(f"two custom actions are named {name!r} / 自定义动作重名")
            found[name] = instance
    return found


class InProcessActions:
    """The project's rasa-sdk actions, imported once and run in this process."""

    def __init__(self, actions: Mapping[str, Any]) -> None:
        self._actions = dict(actions)

    @classmethod
    def from_project(cls, project: Path, package: str = "actions") -> InProcessActions:
        return cls(discover_actions(_import_package(Path(project), package)))

    def names(self) -> frozenset[str]:
        return frozenset(self._actions)

    def wants_validation(self, action_name: str, slots: frozenset[str]) -> bool:
        """Whether a ``validate_<form>`` action would do anything for these slots: it validates or extracts
        one of them, or decides the form's slots itself. Calling it otherwise only costs time."""
        from rasa_sdk.forms import FormValidationAction

        action = self._actions.get(action_name)
        if action is None:
            return False
        cls = type(action)
        if cls.required_slots is not FormValidationAction.required_slots:
            return True
        methods = set(dir(cls))
        if any(m.startswith("extract_") for m in methods):
            return True
        return any(f"validate_{s.replace('-', '_')}" in methods for s in slots)

    async def run(self, action_name: str, tracker: JsonDict, domain: JsonDict) -> CustomActionResult:
        from rasa_sdk import Tracker
        from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
        from rasa_sdk.interfaces import ActionExecutionRejection
        from rasa_sdk.utils import call_potential_coroutine

        action = self._actions.get(action_name)
        if action is None:
            raise CustomActionError(
                "action_not_found", action_name, "找不到这个自定义动作", "no custom action of that name"
            )
        sdk_tracker = Tracker.from_dict(tracker)
        dispatcher = CollectingDispatcher()
        try:
            events = await call_potential_coroutine(action.run(dispatcher, sdk_tracker, domain))
        except ActionExecutionRejection as err:
            raise ActionRejected("action_rejected", action_name, "动作拒绝执行", err.message) from err
        except Exception as err:
            log.exception("custom action %s failed", action_name)
            raise CustomActionError(
                "action_failed", action_name, "自定义动作执行出错", f"{type(err).__name__}: {err}"
            ) from err
        # the same filtering the action server applies, so in-process and remote runs agree
        valid = ActionExecutor.validate_events(list(events or []), action_name)
        return CustomActionResult(events=valid, responses=list(dispatcher.messages))


# ---------------------------------------------------------------------------------------------- remote


class RemoteActions:
    """A rasa-sdk action server (``action_endpoint.url`` in endpoints.yml), spoken to as Rasa does."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        version: str | None = None,
    ) -> None:
        self._url = url
        self._timeout = timeout_s
        self._transport = transport
        self._version = version or _sdk_version()
        self._names: frozenset[str] | None = None

    def names(self) -> frozenset[str]:
        """Names the server reported via :meth:`refresh_names`; empty until then (the server may be down)."""
        return self._names or frozenset()

    async def refresh_names(self) -> frozenset[str]:
        base = self._url.rstrip("/").removesuffix("/webhook")
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
            response = await client.get(f"{base}/actions")
            response.raise_for_status()
        self._names = frozenset(item["name"] for item in response.json())
        return self._names

    async def run(self, action_name: str, tracker: JsonDict, domain: JsonDict) -> CustomActionResult:
        payload = {
            "next_action": action_name,
            "sender_id": tracker.get("sender_id"),
            "tracker": tracker,
            "domain": domain,
            "version": self._version,
        }
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
                response = await client.post(self._url, json=payload)
        except httpx.TimeoutException as err:
            raise CustomActionError(
                "action_server_timeout", action_name, "动作服务器响应超时", "the action server timed out"
            ) from err
        except httpx.TransportError as err:
            raise CustomActionError(
                "action_server_unreachable",
                action_name,
                "无法连接动作服务器",
                f"cannot reach the action server ({type(err).__name__})",
            ) from err
        body = _json_or_empty(response)
        if response.status_code == 400:
            raise ActionRejected("action_rejected", action_name, "动作拒绝执行", str(body.get("error")))
        if response.status_code == 404:
            raise CustomActionError(
                "action_not_found", action_name, "动作服务器上没有这个动作", str(body.get("error"))
            )
        if response.status_code != 200:
            raise CustomActionError(
                "action_server_error",
                action_name,
                "动作服务器出错",
                f"HTTP {response.status_code}: {body.get('error', '')}",
            )
        return CustomActionResult(
            events=list(body.get("events") or []), responses=list(body.get("responses") or [])
        )


def _json_or_empty(response: httpx.Response) -> JsonDict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# ---------------------------------------------------------------------------------------------- engine side


def _mapping_dict(m: Any) -> JsonDict:
    out: JsonDict = {"type": m.type}
    for key in ("entity", "role", "group", "action"):
        if getattr(m, key) is not None:
            out[key] = getattr(m, key)
    if m.intent:
        out["intent"] = list(m.intent)
    if m.not_intent:
        out["not_intent"] = list(m.not_intent)
    if m.value is not None:
        out["value"] = m.value
    if m.conditions:
        out["conditions"] = [
            {
                "active_loop": c.active_loop,
                **({"requested_slot": c.requested_slot} if c.requested_slot else {}),
            }
            for c in m.conditions
        ]
    return out


def domain_to_rasa_dict(domain: Any) -> JsonDict:
    """The domain in the shape Rasa sends an action server (``Domain.as_dict``), which rasa-sdk reads."""
    slots: JsonDict = {}
    for s in domain.slots.values():
        slot: JsonDict = {
            "type": s.type,
            "initial_value": s.initial_value,
            "influence_conversation": s.influence_conversation,
            "mappings": [_mapping_dict(m) for m in s.mappings],
        }
        if s.type == "categorical":
            slot["values"] = list(s.values)
        if s.type == "float":
            slot["min_value"], slot["max_value"] = s.min_value, s.max_value
        slots[s.name] = slot
    responses: JsonDict = {}
    for name, variations in domain.responses.items():
        out = []
        for v in variations:
            item: JsonDict = {}
            if v.text is not None:
                item["text"] = v.text
            if v.buttons:
                item["buttons"] = [{"title": b.title, "payload": b.payload} for b in v.buttons]
            if v.image:
                item["image"] = v.image
            if v.custom is not None:
                item["custom"] = dict(v.custom)
            if v.channel:
                item["channel"] = v.channel
            if v.condition:
                item["condition"] = [{"type": "slot", "name": c.name, "value": c.value} for c in v.condition]
            out.append(item)
        responses[name] = out
    forms: JsonDict = {}
    for f in domain.forms.values():
        forms[f.name] = {"required_slots": list(f.required_slots), **dict(f.extra)}
        if f.ignored_intents:
            forms[f.name]["ignored_intents"] = list(f.ignored_intents)
    intents = []
    for i in domain.intents.values():
        if i.use_entities is None and not i.ignore_entities:
            intents.append(i.name)
            continue
        props: JsonDict = {}
        if i.use_entities is not None:
            props["use_entities"] = list(i.use_entities)
        if i.ignore_entities:
            props["ignore_entities"] = list(i.ignore_entities)
        intents.append({i.name: props})
    return {
        "version": "3.1",
        "intents": intents,
        "entities": list(domain.entities),
        "slots": slots,
        "responses": responses,
        "forms": forms,
        "actions": list(domain.actions),
        "session_config": {
            "session_expiration_time": domain.session_config.session_expiration_time,
            "carry_over_slots_to_new_session": domain.session_config.carry_over_slots_to_new_session,
        },
    }


class RasaSdkAction:
    """A rasa-sdk custom action as an engine ``Action``: tracker out as Rasa JSON, events and responses back."""

    def __init__(self, name: str, runner: CustomActionRunner) -> None:
        self.name = name
        self._runner = runner
        self._domain_cache: tuple[int, JsonDict] | None = None

    def _domain(self, domain: Any) -> JsonDict:
        # the domain does not change while an agent runs; convert it once
        if self._domain_cache is None or self._domain_cache[0] != id(domain):
            self._domain_cache = (id(domain), domain_to_rasa_dict(domain))
        return self._domain_cache[1]

    async def run(self, ctx: Any) -> list[Any]:
        from assistant.events import ActionExecutionRejected, event_from_dict

        try:
            result = await self._runner.run(self.name, ctx.tracker.to_rasa_json(), self._domain(ctx.domain))
        except ActionRejected:
            return [ActionExecutionRejected(self.name)]
        events: list[Any] = []
        channel = ctx.tracker.state.latest_input_channel
        for r in result.responses:
            events.extend(_response_events(r, ctx, channel))
        events.extend(event_from_dict(e) for e in result.events)
        return events


def _response_events(r: JsonDict, ctx: Any, channel: str | None) -> list[Any]:
    """A ``dispatcher.utter_message`` dict as ``BotUttered`` events (a named response rendered by our NLG)."""
    from assistant.events import BotUttered

    name = r.get("response") or r.get("template")
    if name:
        values = {k: v for k, v in r.items() if k not in ("response", "template") and v is not None}
        values.update(r.get("kwargs") or {})
        msg = ctx.nlg.generate(str(name), ctx.tracker.slots, channel, **values)
        if msg is None:
            log.warning("custom action response %s is not in the domain", name)
            return []
        return [BotUttered(msg.text, msg.event_data(), {"utter_action": name})]
    data: JsonDict = {}
    for key in ("buttons", "image", "attachment", "elements"):
        if r.get(key):
            data[key] = r[key]
    if r.get("custom") or r.get("json_message"):
        data["custom"] = r.get("custom") or r.get("json_message")
    if r.get("text") is None and not data:
        return []
    return [BotUttered(r.get("text"), data, {})]


def build_custom_actions(
    project: Path, endpoints: Any, package: str = "actions"
) -> CustomActionRunner | None:
    """The runner endpoints.yml asks for: a remote action server, else the project's ``actions/`` package,
    else None (a project without custom actions)."""
    endpoint = getattr(endpoints, "action_endpoint", None)
    if endpoint is not None:
        return RemoteActions(endpoint.url, timeout_s=endpoint.timeout_s)
    if (Path(project) / package / "__init__.py").exists():
        return InProcessActions.from_project(Path(project), package)
    return None
