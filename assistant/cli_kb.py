"""Knowledge-base commands: ``gov-assistant kb import|publish|rollback|versions|search`` (and ``evaluate``,
registered by ``knowledge.evaluate``)."""

from __future__ import annotations

import getpass
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from assistant.config import ConfigError, RedisConfig, load_config

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="project directory / 项目目录")]
ByOpt = Annotated[str | None, typer.Option("--by", help="author recorded in versions / 操作人")]

kb_app = typer.Typer(
    help="知识库：导入、发布、回滚、检索 / knowledge base: import, publish, roll back, search"
)


def _fail(err: Exception) -> typer.Exit:
    from knowledge.repository import KnowledgeError

    if isinstance(err, KnowledgeError):
        typer.echo(f"错误 / error [{err.code}]: {err.message_zh} / {err.message_en}", err=True)
    else:
        typer.echo(f"错误 / error: {err}", err=True)
    return typer.Exit(code=1)


def _author(by: str | None) -> str:
    if by:
        return by
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def build_service(project: Path, *, with_embedder: bool = True):  # noqa: ANN201 - lazy import of the type
    from knowledge.service import open_knowledge

    config = load_config(project)
    service = open_knowledge(config.database.url, config.knowledge, project, with_embedder=with_embedder)
    if config.redis.url:
        # running replicas load a version this command makes live at once rather than at their next poll
        service.live_listeners.append(_replica_announcer(config.redis))
    return service


def _replica_announcer(settings: RedisConfig) -> Callable[[int], None]:
    """A ``live_listeners`` entry sending ``kb.live`` as a server's publish does; Redis being away only warns: the
    version is live in the database and on disk, and the replicas find it by polling."""

    def announce(version_id: int) -> None:
        from connectors.index_follower import announce_live, kb_channel
        from connectors.redis_sync import sync_redis_client

        client = sync_redis_client(settings)
        try:
            if not announce_live(client, kb_channel(settings), version_id):
                typer.echo("警告 / warning: Redis 不可用，各副本将在轮询时加载新版本 / Redis unreachable: replicas "
                           "will load the new version at their next poll", err=True)
        finally:
            if client is not None:
                client.close()

    return announce


def _print_report(report: object) -> None:
    from knowledge.service import ImportReport

    assert isinstance(report, ImportReport)
    for f in report.files:
        line = f"  {f.status:9s} {f.name}  (+{f.created} ~{f.updated} ={f.duplicate})"
        if f.status == "failed":
            where = f" [{f.location}]" if f.location else ""
            line = f"  failed    {f.name}{where}: {f.error_zh} / {f.error_en}"
        typer.echo(line, err=not report.ok)
    t = report.totals
    if report.ok:
        typer.echo(
            f"新建 / created {t['created']}，更新 / updated {t['updated']}，重复 / duplicate {t['duplicate']}"
        )


@kb_app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="files or folders / 文件或目录")],
    project: ProjectOpt = Path("."),
    publish: Annotated[bool, typer.Option("--publish", help="publish after importing / 导入后发布")] = False,
    by: ByOpt = None,
) -> None:
    """导入文档与问答（全部成功才写入）/ import documents and FAQ (all or nothing), as drafts."""
    from tqdm import tqdm

    from knowledge.repository import KnowledgeError
    from knowledge.service import ImportFailed, collect_files

    try:
        service = build_service(project, with_embedder=publish)
        files = collect_files(paths)
        with tqdm(total=len(files), unit="file", desc="import", file=sys.stderr, leave=False) as bar:
            report = service.import_files(
                [(str(p), p.read_bytes()) for p in files], _author(by), progress=lambda _name: bar.update(1)
            )
        _print_report(report)
        if publish:
            info = service.publish(_author(by))
            typer.echo(f"已发布 / published: version {info.id} ({info.passage_count} passages)")
    except ImportFailed as err:
        _print_report(err.report)
        raise _fail(err) from None
    except (KnowledgeError, ConfigError, OSError) as err:
        raise _fail(err) from None


@kb_app.command("publish")
def publish_command(project: ProjectOpt = Path("."), by: ByOpt = None) -> None:
    """构建新的索引版本并切换上线 / build a new index version and make it live."""
    from knowledge.repository import KnowledgeError

    try:
        info = build_service(project).publish(_author(by))
    except (KnowledgeError, ConfigError) as err:
        raise _fail(err) from None
    typer.echo(f"已发布 / published: version {info.id} ({info.passage_count} passages)")


@kb_app.command("rollback")
def rollback_command(
    version: Annotated[int, typer.Argument(help="index version id / 索引版本号")],
    project: ProjectOpt = Path("."),
) -> None:
    """回滚到之前的索引版本 / make an earlier index version live again."""
    from knowledge.repository import KnowledgeError

    try:
        info = build_service(project).rollback(version)
    except (KnowledgeError, ConfigError) as err:
        raise _fail(err) from None
    typer.echo(f"已回滚 / rolled back: version {info.id} is live")


@kb_app.command("versions")
def versions_command(
    project: ProjectOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出索引版本 / list index versions."""
    try:
        versions = build_service(project, with_embedder=False).versions()
    except ConfigError as err:
        raise _fail(err) from None
    if as_json:
        typer.echo(json.dumps([vars(v) for v in versions], ensure_ascii=False, indent=1, default=str))
        return
    for v in versions:
        error = f"  {v.error}" if v.error else ""
        typer.echo(f"{v.id:5d}  {v.status:9s} {v.passage_count:7d} passages  by {v.created_by}{error}")


@kb_app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="问题 / question")],
    project: ProjectOpt = Path("."),
    k: Annotated[int, typer.Option("--k", min=1, max=50)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """在线上索引中检索（命中测试，不计入未解答问题）/ search the live index (hit testing, not recorded)."""
    from knowledge.api import search_response
    from knowledge.repository import KnowledgeError

    try:
        service = build_service(project)
        result = service.search(query, k, record=False)
    except (KnowledgeError, ConfigError) as err:
        raise _fail(err) from None
    response = search_response(result, service.live_version)
    if as_json:
        typer.echo(response.model_dump_json(indent=1))
        return
    if service.live_version is None:
        typer.echo("尚未发布索引 / nothing published yet", err=True)
    if response.answered:
        typer.echo(f"答案 / answer{' (FAQ)' if response.direct_faq else ''}: {response.answer}")
        for c in response.citations:
            parts = [
                c.title,
                c.section or "",
                f"v{c.version}" if c.version else "",
                str(c.effective_date or ""),
            ]
            typer.echo(f"  出处 / source: {' · '.join(p for p in parts if p)} {c.source_url or ''}".rstrip())
    else:
        typer.echo("无可靠答案 / no confident answer")
    for h in response.hits:
        scores = " ".join(f"{name}={value:.3f}" for name, value in h.scores.items())
        typer.echo(f"  {h.score:.3f}  {h.key:18s} {h.text.splitlines()[-1][:40]}  [{scores}]")


def _register_evaluate() -> None:
    # ``kb evaluate`` belongs to the retrieval side; it registers itself on this sub-app
    if importlib.util.find_spec("knowledge.evaluate") is None:
        return
    from knowledge.evaluate import register_evaluate

    register_evaluate(kb_app)


_register_evaluate()


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
