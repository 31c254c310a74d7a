"""The ``handoff:`` section of config.yml: triggers, service hours, teams, canned replies, console sessions."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TriggerConfig(BaseModel):
    """Keywords match anywhere in the normalised message (full width, traditional characters folded)."""

    model_config = ConfigDict(extra="forbid")
    request_keywords: list[str] = Field(default_factory=lambda: ["转人工", "找客服", "人工服务", "人工客服", "找真人"])
    request_intents: list[str] = Field(default_factory=lambda: ["request_human"])
    complaint_keywords: list[str] = Field(default_factory=lambda: ["投诉", "举报"])
    complaint_intents: list[str] = Field(default_factory=lambda: ["complain"])
    urgent_keywords: list[str] = Field(default_factory=lambda: ["紧急", "急救", "救命", "报警"])
    urgent_intents: list[str] = Field(default_factory=list)
    # a human offered by the fallback ladder and accepted with one of these intents
    accept_intents: list[str] = Field(default_factory=lambda: ["affirm"])
    # the ladder has offered a human and the next turn fails too: hand off without asking again
    after_failed_offer: bool = True
    cancel_keywords: list[str] = Field(default_factory=lambda: ["取消排队", "取消转人工", "不等了", "不用人工", "取消"])
    # while queued, a message asking after the wait (or asking for a human again) is answered with the place in
    # the queue, so the citizen is not left without a word until staff claim
    status_keywords: list[str] = Field(
        default_factory=lambda: ["还要等多久", "要等多久", "还要多久", "等多久", "排到", "到我了吗", "人呢", "有人吗",
                                 "怎么还没", "还没人"]
    )
    # minimum intent confidence for an intent trigger (a payload button has 1.0)
    min_confidence: float = Field(0.5, ge=0, le=1)


class ServiceHoursConfig(BaseModel):
    """Opening hours per weekday in Asia/Shanghai; public holidays closed and 调休 make-up days open (from the
    holiday table) unless ``follow_holidays`` is off."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = "Asia/Shanghai"
    weekly: dict[str, list[str]] = Field(
        default_factory=lambda: {d: ["09:00-12:00", "13:30-17:30"] for d in WEEKDAYS[:5]}
    )
    follow_holidays: bool = True
    # the schedule a make-up working day (调休上班) follows
    makeup_day_hours: list[str] = Field(default_factory=lambda: ["09:00-12:00", "13:30-17:30"])
    closed_dates: list[str] = Field(default_factory=list)  # YYYY-MM-DD extra closures
    always_open: bool = False

    @field_validator("weekly")
    @classmethod
    def _check_weekly(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            for span in spans:
                if not _HHMM.match(span):
                    raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM")
        return v


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., pattern=r"^[a-z0-9_\-]{1,40}$")
    name: str


class CannedReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    text: str


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_hours: float = Field(12.0, gt=0, le=24 * 7)
    # Secure cookies are only sent over HTTPS (and to http://localhost by browsers); switch off only for tests
    cookie_secure: bool = True
    live_minutes: int = Field(30, ge=1, le=24 * 60)


class HandoffConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    triggers: TriggerConfig = Field(default_factory=TriggerConfig)
    service_hours: ServiceHoursConfig = Field(default_factory=ServiceHoursConfig)
    teams: list[TeamConfig] = Field(default_factory=lambda: [TeamConfig(id="general", name="综合咨询")])
    default_team: str = "general"
    complaint_team: str | None = None
    # used for the waiting-time estimate until enough conversations have been closed
    default_handle_minutes: float = Field(5.0, gt=0)
    canned_replies: list[CannedReply] = Field(default_factory=list)
    ticket_prefix: str = Field("LY", pattern=r"^[A-Z]{1,6}$")
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)

    @model_validator(mode="after")
    def _known_teams(self) -> HandoffConfig:
        ids = self.team_ids()
        for name, team in (("default_team", self.default_team), ("complaint_team", self.complaint_team)):
            if team is not None and team not in ids:
                raise ValueError(f"{name}: {team!r} is not one of the teams ({', '.join(sorted(ids))})")
        return self

    def team_ids(self) -> set[str]:
        return {t.id for t in self.teams}
