"""``gov-assistant retention run`` and ``gov-assistant privacy export|erase``: citizens' data on the command line.

Every change is audited in the project's database (``retention.run``, ``privacy.export``, ``privacy.erase``) with
the operating-system user who ran the command; an unknown conversation id is an error with exit code 1.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="project directory / 项目目录")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _source() -> str:
    return f"cli@{socket.gethostname()}"[:128]


def _open(project: Path) -> tuple[Any, Any]:
    """(engine, config) of the project's database."""
    from assistant.config import load_config
    from assistant.store import make_engine
    from knowledge.db import resolve_url

    config = load_config(project)
    return make_engine(resolve_url(config.database.url, project)), config


def _audit(engine: Any) -> Any:
    from assistant.accounts import Accounts

    return Accounts(engine).audit


def _fail(message: str) -> None:
    typer.echo(f"错误 / error: {message}", err=True)
    raise typer.Exit(1)


def register(app: Any) -> None:
    retention = typer.Typer(help="按保留期限删除过期数据 / delete data older than the retention period",
                            no_args_is_help=True)
    privacy = typer.Typer(help="公民个人信息导出与删除 / export or erase a citizen's data", no_args_is_help=True)

    @retention.command("run")
    def run(
        project: ProjectOpt = Path("."),
        days: Annotated[int | None, typer.Option("--days", min=1, help="default: privacy.retention_days")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="count only, delete nothing / 只统计不删除")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    ) -> None:
        """Delete conversations, handoff records, feedback and question texts older than the retention period, and
        the ended old sessions of conversations still in use / 删除超过保留期限的数据"""
        from assistant.privacy import privacy_config
        from assistant.retention import Retention

        engine, config = _open(project)
        report = Retention(engine, privacy_config(config), audit=_audit(engine)).run(
            days, dry_run=dry_run, actor=_actor(), source=_source()
        )
        if as_json:
            typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
            return
        verb = "将删除 / would delete" if dry_run else "已删除 / deleted"
        typer.echo(f"保留 {report.days} 天，截止 / cutoff {report.to_json()['cutoff']}")
        typer.echo(f"{verb}: {report.conversations} 个会话 / conversations")
        for table, n in sorted(report.deleted.items()):
            typer.echo(f"  {table}\t{n}")
        typer.echo(f"{verb}: {report.trimmed_conversations} 个仍在使用的会话中的过期会话段 / "
                   f"conversations still in use trimmed of their old sessions ({report.trimmed_events} events)")
        for table, n in sorted(report.trimmed.items()):
            typer.echo(f"  {table}\t{n}")
        for reason, n in sorted(report.kept.items()):
            typer.echo(f"保留 / kept ({reason})\t{n}")

    @privacy.command("export")
    def export(
        conversation_id: Annotated[str, typer.Argument(help="会话 ID / conversation id")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="write to this file (default: stdout)")] = None,
        project: ProjectOpt = Path("."),
    ) -> None:
        """Everything stored about one conversation, as JSON (unmasked: it is for the citizen) /
        导出某个会话的全部数据"""
        from assistant.privacy import Privacy, PrivacyError, export_json

        engine, _ = _open(project)
        try:
            doc = Privacy(engine, _audit(engine)).export(conversation_id, actor=_actor(), source=_source())
        except PrivacyError as err:
            _fail(str(err))
        text = export_json(doc) + "\n"
        if out is None:
            sys.stdout.buffer.write(text.encode("utf-8"))
            sys.stdout.flush()
        else:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"已导出 / exported: {out} ({len(doc['events'])} events)", err=True)

    @privacy.command("erase")
    def erase(
        conversation_id: Annotated[str, typer.Argument(help="会话 ID / conversation id")],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
        project: ProjectOpt = Path("."),
    ) -> None:
        """Delete everything stored about one conversation, in one transaction / 删除某个会话的全部数据"""
        from assistant.privacy import Privacy, PrivacyError

        if not yes and not typer.confirm(
            f"确认永久删除会话 {conversation_id} 的全部数据？/ Permanently erase conversation {conversation_id}?"
        ):
            _fail("已取消 / cancelled")
        engine, _ = _open(project)
        try:
            counts = Privacy(engine, _audit(engine)).erase(conversation_id, actor=_actor(), source=_source())
        except PrivacyError as err:
            _fail(str(err))
        typer.echo(f"已删除 / erased: {conversation_id}")
        for table, n in sorted(counts.items()):
            typer.echo(f"  {table}\t{n}")

    app.add_typer(retention, name="retention")
    app.add_typer(privacy, name="privacy")
