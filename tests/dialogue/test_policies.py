from __future__ import annotations

import pytest
import yaml
from dialogue_helpers import user

from assistant.config import PolicyConfig
from assistant.domain import Domain
from assistant.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    FollowupAction,
    SlotSet,
)
from assistant.policies import (
    POLICIES,
    PolicyBuildContext,
    PolicyEnsemble,
    PolicyError,
    Prediction,
    build_policies,
    default_registry,
)
from assistant.policies.fallback import FallbackLadderPolicy, failed_turns_before
from assistant.policies.knowledge import KnowledgePolicy
from assistant.policies.memoization import MemoizationPolicy
from assistant.policies.rules import RulePolicy
from assistant.rasa_yaml import parse_story_data
from assistant.tracker import Tracker


def tracker(domain: Domain, *groups) -> Tracker:
    events = [ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
    for g in groups:
        events += g if isinstance(g, list) else [g]
    return Tracker("c", tuple(events), domain.slot_defaults)


def act(name: str) -> ActionExecuted:
    return ActionExecuted(name)


@pytest.fixture(scope="module")
def rules(story_data) -> RulePolicy:
    return RulePolicy(story_data.rules)


def predicted(policy, domain, *groups) -> str | None:
    p = policy.predict(tracker(domain, *groups), domain)
    return p.action if p else None


# --- rules --------------------------------------------------------------------------------------------------


def test_rule_predicts_then_listens(rules, domain):
    assert predicted(rules, domain, user("greet")) == "utter_greet"
    assert predicted(rules, domain, user("greet"), act("utter_greet")) == "action_listen"


def test_conversation_start_rule_only_at_start(rules, domain):
    assert predicted(rules, domain, user("goodbye")) == "utter_greet"
    assert predicted(rules, domain, user("goodbye"), act("utter_greet")) == "utter_goodbye"
    later = [user("greet"), act("utter_greet"), user("goodbye")]
    assert predicted(rules, domain, *later) is None


def test_form_activation_rule_predicts_the_form_action(rules, domain):
    assert predicted(rules, domain, user("renew_id_card")) == "renew_form"
    assert predicted(rules, domain, user("renew_id_card"), act("renew_form"), ActiveLoop("renew_form"),
                     SlotSet("requested_slot", "phone")) == "action_listen"


def test_submit_rule_after_form_completes(rules, domain):
    done = [ActiveLoop("renew_form"), user("inform"), act("renew_form"), ActiveLoop(None), SlotSet("requested_slot", None)]
    assert predicted(rules, domain, *done) == "utter_submit"
    still_active = [ActiveLoop("renew_form"), user("inform"), act("renew_form"), SlotSet("requested_slot", "district")]
    assert predicted(rules, domain, *still_active) != "utter_submit"


def test_digression_rule_returns_to_the_form(rules, domain):
    inside = [user("renew_id_card"), act("renew_form"), ActiveLoop("renew_form"), SlotSet("requested_slot", "phone")]
    greet = [*inside, user("greet"), ActionExecutionRejected("renew_form")]
    assert predicted(rules, domain, *greet) == "utter_greet"
    assert predicted(rules, domain, *greet, act("utter_greet")) == "renew_form"


def test_slot_was_set_step_checks_the_value(rules, domain):
    assert predicted(rules, domain, user("request_human"), SlotSet("wants_human", True)) == "utter_phone_known"
    assert predicted(rules, domain, user("request_human"), SlotSet("wants_human", False)) is None


def test_wait_for_user_input_false(rules, domain):
    assert predicted(rules, domain, user("affirm")) == "action_check_status"
    assert predicted(rules, domain, user("affirm"), act("action_check_status")) is None


def test_default_restart_rule(rules, domain):
    assert predicted(rules, domain, user("restart")) == "action_restart"


def test_rule_with_or_and_entities():
    domain = Domain.from_dict({"intents": ["a", "b", "inform"], "entities": ["phone"],
                               "responses": {"utter_x": [{"text": "x"}], "utter_p": [{"text": "p"}]}})
    data = parse_story_data(yaml.safe_load("""
rules:
- rule: either
  steps: [{or: [{intent: a}, {intent: b}]}, {action: utter_x}]
- rule: phone given
  steps: [{intent: inform, entities: [phone]}, {action: utter_p}]
"""), "t")
    policy = RulePolicy(data.rules)
    assert predicted(policy, domain, user("a")) == "utter_x"
    assert predicted(policy, domain, user("b")) == "utter_x"
    assert predicted(policy, domain, user("inform", [{"entity": "phone", "value": "139"}])) == "utter_p"
    assert predicted(policy, domain, user("inform")) is None


# --- memoization --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def memo(story_data, domain) -> MemoizationPolicy:
    return MemoizationPolicy(story_data.stories, domain, max_history=5)


def test_memoization_follows_a_story_with_entities_and_slots(memo, domain):
    turn1 = [user("deny"), act("utter_ask_phone")]
    assert predicted(memo, domain, user("deny")) == "utter_ask_phone"
    assert predicted(memo, domain, *turn1) == "action_listen"
    phone = [user("inform", [{"entity": "phone", "value": "13912345678"}]), SlotSet("phone", "13912345678")]
    assert predicted(memo, domain, *turn1, *phone) == "utter_phone_known"
    # same intent, no phone entity and no slot: a different state, not remembered
    assert predicted(memo, domain, *turn1, user("inform")) is None


def test_memoization_joins_checkpoints(memo, domain):
    opening = [user("move_house"), act("utter_ask_phone")]
    assert predicted(memo, domain, user("move_house")) == "utter_ask_phone"
    assert predicted(memo, domain, *opening, user("inform")) == "utter_district"


def test_memoization_or_steps(memo, domain):
    assert predicted(memo, domain, user("thank")) == "utter_goodbye"
    assert predicted(memo, domain, user("praise")) == "utter_goodbye"


def test_story_may_start_mid_conversation(memo, domain):
    earlier = [user("greet"), act("utter_greet")]
    assert predicted(memo, domain, *earlier, user("deny")) == "utter_ask_phone"


def test_conflicting_stories_are_dropped(domain):
    data = parse_story_data(yaml.safe_load("""
stories:
- story: one
  steps: [{intent: greet}, {action: utter_greet}]
- story: two
  steps: [{intent: greet}, {action: utter_goodbye}]
"""), "t")
    policy = MemoizationPolicy(data.stories, domain)
    assert policy.lookup.conflicts >= 1
    assert predicted(policy, domain, user("greet")) is None


def test_max_history_limits_the_key(domain):
    data = parse_story_data(yaml.safe_load("""
stories:
- story: long
  steps: [{intent: greet}, {action: utter_greet}, {intent: deny}, {action: utter_ask_phone},
          {intent: affirm}, {action: utter_goodbye}]
"""), "t")
    short = MemoizationPolicy(data.stories, domain, max_history=2)
    # with two moves of history, what came before "deny, ask_phone" does not matter
    prefix = [user("goodbye"), act("utter_goodbye"), user("deny"), act("utter_ask_phone"), user("affirm")]
    assert predicted(short, domain, *prefix) == "utter_goodbye"
    # with five, the different opening is part of the key: not remembered
    full = MemoizationPolicy(data.stories, domain, max_history=5)
    assert predicted(full, domain, *prefix) is None


def test_end_to_end_stories_are_reported(story_data):
    assert any("end-to-end" in u and "end to end" in u for u in story_data.unsupported)
    assert all(s.name != "end to end" for s in story_data.stories)


# --- ensemble and building from config ------------------------------------------------------------------------


def test_build_from_config_reports_unsupported_by_name(domain, story_data):
    configs = [PolicyConfig(name="RulePolicy"), PolicyConfig(name="MemoizationPolicy", max_history=3),
               PolicyConfig(name="TEDPolicy", epochs=100), PolicyConfig(name="UnexpecTEDIntentPolicy")]
    policies, warnings = build_policies(configs, PolicyBuildContext(domain, story_data), default_registry())
    names = [p.name for p in policies]
    assert names[:2] == ["RulePolicy", "MemoizationPolicy"] and "KnowledgePolicy" in names
    assert any("TEDPolicy" in w for w in warnings) and any("UnexpecTEDIntentPolicy" in w for w in warnings)
    with pytest.raises(PolicyError, match="TEDPolicy"):
        build_policies(configs, PolicyBuildContext(domain, story_data), strict=True)
    with pytest.raises(PolicyError, match="RulePolicyy"):
        build_policies([{"name": "RulePolicyy"}], PolicyBuildContext(domain, story_data))
    with pytest.raises(PolicyError, match="max_histroy"):
        build_policies([{"name": "MemoizationPolicy", "max_histroy": 3}], PolicyBuildContext(domain, story_data))


class _Fixed:
    def __init__(self, name: str, priority: int, action: str | None) -> None:
        self.name, self.priority, self.action = name, priority, action

    def predict(self, tracker, domain):
        return Prediction(self.action, 1.0, self.name) if self.action else None


def test_other_packages_register_policies_by_name(domain, story_data):
    registry = dict(POLICIES)
    registry["FormPolicy"] = lambda ctx, settings: _Fixed("FormPolicy", int(settings.get("priority", 7)), "renew_form")
    policies, _ = build_policies([{"name": "FormPolicy"}, {"name": "RulePolicy"}], PolicyBuildContext(domain, story_data),
                                 registry)
    ensemble = PolicyEnsemble(policies)
    assert ensemble.policies[0].name == "FormPolicy"
    assert ensemble.predict(tracker(domain, user("greet")), domain).action == "renew_form"


def test_ensemble_priority_rejection_and_defaults(domain):
    ensemble = PolicyEnsemble([_Fixed("low", 1, "utter_goodbye"), _Fixed("form", 7, "renew_form")])
    t = tracker(domain, user("greet"))
    assert ensemble.predict(t, domain) == Prediction("renew_form", 1.0, "form")
    # an action that has just been rejected is not predicted again
    assert ensemble.predict(t.with_events([ActionExecutionRejected("renew_form")]), domain).action == "utter_goodbye"
    empty = PolicyEnsemble([])
    assert empty.predict(t, domain).action == "action_default_fallback"
    assert empty.predict(t.with_events([act("utter_greet")]), domain).action == "action_listen"
    assert empty.predict(t.with_events([FollowupAction("utter_goodbye")]), domain).action == "utter_goodbye"
    in_form = tracker(domain, ActiveLoop("renew_form"), user("ask_location"), ActionExecutionRejected("renew_form"),
                      act("action_knowledge_answer"))
    assert empty.predict(in_form, domain).action == "renew_form"


# --- knowledge and fallback ladder ------------------------------------------------------------------------------


def test_knowledge_policy_question_intents_and_other_messages(domain):
    kb = object()  # only its presence matters: the policy never searches, the action does
    policy = KnowledgePolicy(kb)

    def pred(*groups):
        return policy.predict(tracker(domain, *groups), domain)

    assert pred(user("ask_materials")) == Prediction("action_knowledge_answer", 1.0, "KnowledgePolicy")
    assert pred(user("out_of_scope")).metadata == {}
    # anything else nothing handled is tried, to be answered only if the knowledge base knows
    assert pred(user("nlu_fallback", text="公积金怎么提取")).metadata == {"only_if_known": True}
    assert pred(user("renew_id_card", text="身份证过期了怎么换")).metadata == {"only_if_known": True}
    assert pred(user("affirm", text="公积金怎么提取")) is None  # conversational: never
    assert pred(user("greet")) is None
    assert pred(user("ask_materials"), act("action_knowledge_answer")) is None
    assert KnowledgePolicy(None).predict(tracker(domain, user("nlu_fallback", text="x")), domain) is None
    configured = KnowledgePolicy(kb, intents=["renew_id_card"], answer_if_known=False)
    assert configured.predict(tracker(domain, user("ask_materials")), domain) is None
    assert configured.predict(tracker(domain, user("thank", text="x")), domain) is None


def test_fallback_ladder_clarifies_then_offers_a_human(domain):
    ladder = FallbackLadderPolicy(threshold=0.4, catch_all=False)
    unsure = user("nlu_fallback", text="我想弄那个证", confidence=0.3,
                  ranking=[("nlu_fallback", 0.3), ("renew_id_card", 0.25), ("ask_location", 0.2)])
    assert predicted(ladder, domain, unsure) == "action_clarify_intent"
    first_failure = [unsure, act("action_clarify_intent"), BotUttered("?")]
    assert predicted(ladder, domain, *first_failure, unsure) == "action_offer_human"
    # a low-confidence ordinary intent counts as unsure too
    assert predicted(ladder, domain, user("greet", confidence=0.2)) == "action_clarify_intent"
    assert predicted(ladder, domain, user("greet", confidence=0.9)) is None
    # a served turn in between resets the count
    served = [*first_failure, user("greet"), act("utter_greet")]
    assert predicted(ladder, domain, *served, unsure) == "action_clarify_intent"
    # asked last, it also takes a confident message nothing else handled
    assert predicted(FallbackLadderPolicy(), domain, user("greet", confidence=0.9)) == "action_default_fallback"
    assert predicted(FallbackLadderPolicy(), domain, *first_failure, user("greet", confidence=0.9)) == "action_offer_human"


def test_knowledge_abstention_counts_as_a_failure(domain):
    t = tracker(domain, user("out_of_scope"), act("action_knowledge_answer"),
                BotUttered("不知道", {}, {"abstained": True}), user("nlu_fallback"))
    assert failed_turns_before(t) == 1


def test_rule_condition_on_a_slot(domain):
    data = parse_story_data(yaml.safe_load("""
rules:
- rule: only for people who asked for a human
  condition: [{slot_was_set: [{wants_human: true}]}]
  steps: [{intent: greet}, {action: utter_phone_known}]
"""), "t")
    policy = RulePolicy(data.rules, defaults=False)
    assert predicted(policy, domain, SlotSet("wants_human", True), user("greet")) == "utter_phone_known"
    assert predicted(policy, domain, SlotSet("wants_human", False), user("greet")) is None
    assert predicted(policy, domain, user("greet")) is None
