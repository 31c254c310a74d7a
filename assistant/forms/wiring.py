"""Everything the forms package adds to an agent, built from the project directory and config.

The submitter is passed in: the HTTP one lives in ``connectors/submission.py`` (``submitter_for(config)``),
because the engine does not import its edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from assistant.actions import Action
from assistant.calendar import HolidayCalendar, load_holiday_calendar
from assistant.custom_actions import CustomActionRunner, RasaSdkAction, build_custom_actions
from assistant.domain import Domain
from assistant.forms.action import FormAction, FormDeps
from assistant.forms.config import FormsConfig, load_endpoints
from assistant.forms.outbox import OutboxStore
from assistant.forms.spec import form_spec
from assistant.forms.submission import Submitter
from assistant.forms.support_actions import ResetFormSlotsAction, SubmitFormAction


@dataclass(frozen=True)
class FormsRuntime:
    # form actions and rasa-sdk custom actions, for ``ActionRegistry.for_domain(domain, extra=actions)``
    actions: tuple[Action, ...]
    custom_actions: CustomActionRunner | None
    calendar: HolidayCalendar
    # what the outbox's background worker needs (``assistant.forms.outbox.OutboxWorker``)
    forms: Mapping[str, FormAction] = field(default_factory=dict)
    submitter: Submitter | None = None
    outbox: OutboxStore | None = None


def custom_action_names(domain: Domain, runner: CustomActionRunner) -> list[str]:
    """Names to route to rasa-sdk: what the package defines, or (for a remote server, whose list we do not
    fetch at start-up) every action the domain declares that the engine does not implement itself."""
    from assistant.actions.builtin import builtin_actions

    known = runner.names()
    if known:
        return sorted(known)
    builtins = {a.name for a in builtin_actions()}
    return [
        a
        for a in domain.actions
        if a not in builtins and a not in domain.forms and not a.startswith("utter_")
    ]


def build_forms_runtime(
    project: Path,
    domain: Domain,
    config: FormsConfig,
    submitter: Submitter,
    *,
    calendar: HolidayCalendar | None = None,
    custom_actions: CustomActionRunner | None = None,
    outbox: OutboxStore | None = None,
) -> FormsRuntime:
    """``outbox`` (a store in the project's database) keeps forms the back office could not take for the background
    retry; without it a failed form waits for the citizen's next message or "重试"."""
    calendar = calendar or load_holiday_calendar()
    runner = custom_actions or build_custom_actions(
        Path(project), load_endpoints(Path(project)), config.actions_package
    )
    outbox = outbox if config.outbox.enabled else None
    deps = FormDeps(submitter, calendar, runner, config.retry_pending_on_next_turn, outbox, config.outbox.backoff_s)
    actions: list[Action] = []
    if runner is not None:
        actions += [RasaSdkAction(name, runner) for name in custom_action_names(domain, runner)]
    forms = {name: FormAction(form_spec(domain, name), deps) for name in domain.forms}
    actions += list(forms.values())
    actions += [SubmitFormAction(forms), ResetFormSlotsAction([f.form for f in forms.values()])]
    return FormsRuntime(tuple(actions), runner, calendar, forms, submitter, outbox)
