"""``gov-assistant test``: the project's conversation tests (``tests/test_stories.yml``) through the real engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.rasa_yaml import load_story_files
from assistant.store import InMemoryTrackerStore
from assistant.story_test import format_report, run_test_stories


def build_engine(project: Path) -> Any:
    """The agent exactly as the server builds it (NLU trained if missing, knowledge base, forms, custom actions),
    over an in-memory store so tests leave the project's database alone."""
    from connectors.server import build_runtime  # the composition root lives at the edge

    return build_runtime(project).agent.with_store(InMemoryTrackerStore())


def run(project: Path, stories: Path | None = None) -> int:
    path = stories or project / "tests" / "test_stories.yml"
    if not path.exists():
        typer.echo(f"{path}: no test stories / 找不到测试故事文件", err=True)
        return 2
    data = load_story_files([path])
    if not data.stories:
        typer.echo(f"{path}: no stories to run / 没有可运行的测试故事", err=True)
        return 2
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
    ) -> None:
        """Run the conversation tests through the real pipeline / 运行对话测试 (story accuracy, action P/R/F1)"""
        raise typer.Exit(run(project.resolve(), stories))
