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
        spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(pkg_dir)])
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
        return CustomActionResult(events=list(body.get("events") or []), responses=list(body.get("responses") or []))


def _json_or_empty(response: httpx.Response) -> JsonDict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
