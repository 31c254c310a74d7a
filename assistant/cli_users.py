"""``gov-assistant users create|disable|enable|reset-password|set-role|list``: staff accounts.

Every change is audited with the operating-system user who ran the command (``cli:<user>``) as actor."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.accounts import ROLES, AccountError, Accounts

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="project directory / 项目目录")]


def _accounts(project: Path) -> Accounts:
    from assistant.config import load_config
    from knowledge.db import resolve_url

    config = load_config(project)
    return Accounts(resolve_url(config.database.url, project))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli"


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("密码 / password", hide_input=True, confirmation_prompt=True))


def _fail(err: Exception) -> None:
    typer.echo(f"错误 / error: {err}", err=True)
    raise typer.Exit(1)


def register(app: Any) -> None:
    users = typer.Typer(help="工作人员账号 / staff accounts", no_args_is_help=True)

    @users.command("create")
    def create(
        username: Annotated[str, typer.Argument(help="登录名 / login name")],
        role: Annotated[str, typer.Option("--role", help=f"one of {', '.join(ROLES)}")] = "agent",
        name: Annotated[str | None, typer.Option("--name", help="显示名 / display name")] = None,
        team: Annotated[str | None, typer.Option("--team", help="所属组 / team id")] = None,
        password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
        project: ProjectOpt = Path("."),
    ) -> None:
        """Create a staff account / 创建工作人员账号"""
        try:
            user = _accounts(project).create_user(username, _password(password_stdin), role, name, team,
                                                  by=_actor(), source="cli")
        except AccountError as err:
            _fail(err)
        typer.echo(f"已创建 / created: {user.username} ({user.role})")

    @users.command("disable")
    def disable(username: str, project: ProjectOpt = Path(".")) -> None:
        """Disable an account and end its sessions / 停用账号"""
        try:
            _accounts(project).set_active(username, False, by=_actor(), source="cli", allow_no_admin=True)
        except AccountError as err:
            _fail(err)
        typer.echo(f"已停用 / disabled: {username}")

    @users.command("enable")
    def enable(username: str, project: ProjectOpt = Path(".")) -> None:
        """Enable an account again / 启用账号"""
        try:
            _accounts(project).set_active(username, True, by=_actor(), source="cli")
        except AccountError as err:
            _fail(err)
        typer.echo(f"已启用 / enabled: {username}")

    @users.command("reset-password")
    def reset_password(
        username: str,
        password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
        project: ProjectOpt = Path("."),
    ) -> None:
        """Set a new password and end the account's sessions / 重置密码"""
        try:
            _accounts(project).reset_password(username, _password(password_stdin), by=_actor(), source="cli")
        except AccountError as err:
            _fail(err)
        typer.echo(f"密码已重置 / password reset: {username}")

    @users.command("set-role")
    def set_role(
        username: str,
        role: Annotated[str, typer.Argument(help=f"one of {', '.join(ROLES)}")],
        project: ProjectOpt = Path("."),
    ) -> None:
        """Change an account's role / 修改角色"""
        try:
            _accounts(project).set_role(username, role, by=_actor(), source="cli", allow_no_admin=True)
        except AccountError as err:
            _fail(err)
        typer.echo(f"角色已修改 / role changed: {username} -> {role}")

    @users.command("list")
    def list_users(project: ProjectOpt = Path(".")) -> None:
        """List staff accounts / 列出账号"""
        for u in _accounts(project).users():
            typer.echo(f"{u.username}\t{u.role}\t{u.display_name}\t{u.team or '-'}\t{'active' if u.active else 'disabled'}")

    app.add_typer(users, name="users")
