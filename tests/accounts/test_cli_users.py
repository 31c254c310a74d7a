"""``gov-assistant users ...`` on a project's database: every change audited with the operating-system user who
ran it; refusals exit 1 with a bilingual message."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from assistant.accounts import Accounts


def _run(project: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    from assistant.cli import app

    r = CliRunner().invoke(app, ["users", *args, "-p", str(project)], input=stdin)
    return r.exit_code, r.output


def test_users_commands_change_accounts_and_are_audited(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("database:\n  url: sqlite:///var/users.db\n", encoding="utf-8")
    code, out = _run(tmp_path, "create", "sun", "--role", "editor", "--name", "孙丽", "--password-stdin",
                     stdin="first long password\n")
    assert code == 0 and "sun (editor)" in out, out
    accounts = Accounts(f"sqlite:///{tmp_path / 'var' / 'users.db'}")
    assert accounts.authenticate("sun", "first long password").role == "editor"  # type: ignore[union-attr]
    assert _run(tmp_path, "set-role", "sun", "admin")[0] == 0
    assert accounts.get("sun").role == "admin"  # type: ignore[union-attr]
    assert _run(tmp_path, "reset-password", "sun", "--password-stdin", stdin="second long password\n")[0] == 0
    assert accounts.authenticate("sun", "second long password") is not None
    # the command line may disable the last admin (it can create another); the web admin may not
    assert _run(tmp_path, "disable", "sun")[0] == 0
    assert accounts.authenticate("sun", "second long password") is None
    assert _run(tmp_path, "enable", "sun")[0] == 0
    assert accounts.authenticate("sun", "second long password") is not None
    code, out = _run(tmp_path, "list")
    assert code == 0 and "sun\tadmin\t孙丽\t-\tactive" in out
    entries = accounts.audit_entries("user")
    assert [e["action"] for e in entries] == ["user.enable", "user.disable", "user.reset_password", "user.role",
                                              "user.create"]
    assert all(e["actor"].startswith("cli") and e["source"] == "cli" and e["target"] == "sun" for e in entries)
    assert entries[3]["detail"] == {"from": "editor", "to": "admin"}
    assert "first long password" not in str(entries) and "second long password" not in str(entries)


def test_users_commands_refuse_bad_input(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("database:\n  url: sqlite:///var/users.db\n", encoding="utf-8")
    code, out = _run(tmp_path, "create", "zhou", "--role", "boss", "--password-stdin", stdin="long enough pw\n")
    assert code == 1 and "未知角色" in out and "unknown role" in out
    code, out = _run(tmp_path, "create", "bad name!", "--password-stdin", stdin="long enough pw\n")
    assert code == 1 and "a username is" in out
    code, out = _run(tmp_path, "create", "zhou", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 8" in out
    assert _run(tmp_path, "create", "zhou", "--password-stdin", stdin="long enough pw\n")[0] == 0
    code, out = _run(tmp_path, "set-role", "zhou", "root")
    assert code == 1 and "unknown role" in out
    code, out = _run(tmp_path, "disable", "nobody")
    assert code == 1 and "no such user" in out
