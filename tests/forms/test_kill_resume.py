"""A process killed with SIGKILL in the middle of a form: a new process on the same SQLite file continues the
conversation at the same field, with the fields given before the kill intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from form_harness import ROOT, load_domain

from assistant.store import SQLTrackerStore
from assistant.tracker import Tracker

ID = "110101199003077571"

SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path
from form_harness import build_agent, sqlite_store
from assistant.agent import UserMessage
from assistant.forms.submission import UnconfiguredSubmitter

agent = build_agent(sqlite_store(Path(sys.argv[1])), UnconfiguredSubmitter())
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    replies = asyncio.run(agent.handle(UserMessage("citizen-1", line.strip())))
    print(json.dumps([r.text for r in replies], ensure_ascii=False), flush=True)
"""


class AgentProcess:
    def __init__(self, db: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT)]),
            "OMP_NUM_THREADS": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env=env,
        )
        assert json.loads(self._line()) == {"ready": True}

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"agent process ended (exit code {self.proc.poll()})")
        return line

    def say(self, text: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return "\n".join(t or "" for t in json.loads(self._line()))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def stored_tracker(db: Path) -> Tracker:
    domain = load_domain()
    events = SQLTrackerStore(f"sqlite:///{db}").load("citizen-1")
    return Tracker("citizen-1", (), domain.slot_defaults).with_events(events)


def test_sigkill_mid_form_then_a_new_process_resumes_at_the_same_field(tmp_path: Path) -> None:
    db = tmp_path / "conversations.db"
    first = AgentProcess(db)
    try:
        assert "姓名" in first.say("/id_card_renewal")
        assert "身份证号" in first.say("张三")
        assert "联系电话" in first.say(f"身份证号{ID}")
        # the next message is sent and the process killed without waiting: the turn may or may not finish
        assert first.proc.stdin is not None
        first.proc.stdin.write("13912345678\n")
        first.proc.stdin.flush()
    finally:
        first.kill()
    assert first.proc.returncode == -signal.SIGKILL

    tracker = stored_tracker(db)
    assert tracker.active_loop == "id_card_appointment"
    assert (tracker.slots["applicant_name"], tracker.slots["id_number"]) == ("张三", ID)
    assert tracker.slots["requested_slot"] in ("phone", "appointment_date")

    second = AgentProcess(db)
    try:
        # whether or not the killed turn got through, the phone is (re)given and the form moves on
        reply = second.say("13912345678")
        assert "预约日期" in reply
        # and the earlier fields are still there at the confirmation
        second.say("下周二")
        second.say("云湖区")
        second.say("换领")
        reply = second.say("跳过")
        assert "姓名：张三" in reply and "1101**********7571" in reply and "139****5678" in reply
    finally:
        second.close()
    tracker = stored_tracker(db)
    assert tracker.slots["form_phase"] == "confirm"
