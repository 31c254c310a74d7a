"""Service forms: fields, validators, the form loop and its policy, confirmation and submission.

``assistant.forms.wiring.build_forms_runtime`` builds the form actions (and the project's rasa-sdk actions) for an
agent. Importing this package registers ``"FormPolicy"`` in the engine's policy registry so ``config.yml`` can
name it; everything else is imported only when used, so ``assistant.config`` can import ``forms.config`` cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.policies import POLICIES, Policy, PolicyBuildContext


def _form_policy(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> Policy:
    from assistant.forms.policy import FormPolicy

    return FormPolicy.build(ctx, settings)


POLICIES.setdefault("FormPolicy", _form_policy)
