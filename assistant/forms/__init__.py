"""Service forms: fields, validators, the form loop and its policy, confirmation and submission.

``form_actions(domain, deps)`` builds one action per form in the domain; importing this package registers
``"FormPolicy"`` in the engine's policy registry so ``config.yml`` can name it.
"""

from __future__ import annotations

from assistant.domain import Domain
from assistant.forms.action import FormAction, FormDeps
from assistant.forms.policy import FormPolicy, form_policy_factory
from assistant.forms.spec import FormSpec, form_spec
from assistant.policies import POLICIES

POLICIES.setdefault("FormPolicy", form_policy_factory)


def form_actions(domain: Domain, deps: FormDeps) -> list[FormAction]:
    return [FormAction(form_spec(domain, name), deps) for name in domain.forms]


__all__ = ["FormAction", "FormDeps", "FormPolicy", "FormSpec", "form_actions", "form_spec"]
