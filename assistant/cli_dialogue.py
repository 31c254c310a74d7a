"""``gov-assistant test``: the project's conversation tests (``tests/test_stories.yml``) through the real engine."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from assistant.rasa_yaml import load_story_files
from assistant.store import InMemoryTrackerStore
from assistant.story_test import format_report, run_test_stories


def build_engine(project: Path) -> Any:
    """The agent exactly as the server builds it (NLU trained if missing, knowledge base, forms, custom actions),
    over an in-memory store so tests leave the project's database alone."""
    from connectors.server import build_runtime  # the composition root lives at the edge

    return build_runtime(project).agent.with_store(InMemoryTrackerStore())


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


@contextmanager
def demo_backoffice(project: Path) -> Iterator[str | None]:
    """Start the demo back office for the run when config.yml submits to a local address nobody serves, so
    the confirmation steps of the test stories reach a real HTTP service (as `make run` does)."""
    from assistant.config import load_config

    url = load_config(project).forms.submission.url
    parts = urlsplit(url or "")
    host, port = parts.hostname, parts.port
    if host not in ("127.0.0.1", "localhost") or port is None or not _port_free(host, port):
        yield None
        return
    from connectors.backoffice_demo import serve_in_thread

    with serve_in_thread(host="127.0.0.1", port=port) as running:
        yield running.submissions_url


def run(project: Path, stories: Path | None = None, backoffice: bool = True) -> int:
    path = stories or project / "tests" / "test_stories.yml"
    if not path.exists():
        typer.echo(f"{path}: no test stories / 找不到测试故事文件", err=True)
        return 2
    data = load_story_files([path])
    if not data.stories:
        typer.echo(f"{path}: no stories to run / 没有可运行的测试故事", err=True)
        return 2
    with demo_backoffice(project) if backoffice else nullcontext() as started:
        if started:
            typer.echo(f"started the demo back office for this run / 已启动演示受理系统: {started}")
        agent = build_engine(project)
        report = asyncio.run(run_test_stories(agent, data.stories))
    typer.echo(format_report(report, [*agent.warnings, *data.unsupported]))
    # a story that could not even be read (unsupported steps) is a failure too, never silently skipped
    return 1 if report.failed or data.unsupported else 0


def register(app: typer.Typer) -> None:
    @app.command("test")
    def test(
        project: Annotated[Path, typer.Option("--project", "-p", help="project directory / 项目目录")] = Path("."),
        stories: Annotated[
            Path | None, typer.Option("--stories", help="default: tests/test_stories.yml / 测试故事文件")
        ] = None,
        backoffice: Annotated[
            bool, typer.Option(help="start the demo back office when config.yml submits to a free local port")
        ] = True,
    ) -> None:
        """Run the conversation tests through the real pipeline / 运行对话测试 (story accuracy, action P/R/F1)"""
        raise typer.Exit(run(project.resolve(), stories, backoffice))
