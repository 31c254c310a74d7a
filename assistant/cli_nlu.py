"""NLU commands: ``train``, ``shell``, ``evaluate nlu``."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from assistant.config import ConfigError, ProjectConfig, load_config
from nlu.components import PipelineError
from nlu.training_data import TrainingDataError
from nlu.types import ParseResult

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="project directory / 项目目录")]

_EXPECTED = (ConfigError, TrainingDataError, PipelineError, FileNotFoundError, ValueError)


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"错误 / error: {err}", err=True)
    return typer.Exit(code=1)


def _config(project: Path) -> ProjectConfig:
    return load_config(project)


def _train(project: Path, config: ProjectConfig) -> Path:
    from nlu.persistence import train

    started = time.perf_counter()
    path = train(project, config)
    typer.echo(f"已训练 / trained: {path}  ({time.perf_counter() - started:.1f} s)")
    from nlu.persistence import read_metadata

    for warning in read_metadata(path).get("warnings", []):
        typer.echo(f"注意 / note: {warning}")
    _report_unsupported_dialogue(project)
    return path


def _report_unsupported_dialogue(project: Path) -> None:
    """A Rasa project's dialogue features the engine does not support (TEDPolicy, end-to-end stories, ...) are
    named at train time, as Rasa users expect to learn of them then, not when the bot misbehaves."""
    if not ((project / "domain.yml").exists() or (project / "domain").is_dir()):
        return
    import assistant.forms  # noqa: F401  (registers FormPolicy, which config.yml may name)
    from assistant.agent import check_project

    for warning in check_project(project):
        typer.echo(f"不支持 / unsupported: {warning}")


def train_command(project: ProjectOpt = Path(".")) -> None:
    """训练 NLU 模型 / train the NLU model into PROJECT/models/."""
    try:
        _train(project, _config(project))
    except _EXPECTED as err:
        raise _fail(err) from None


# ID and phone numbers are masked in everything the shell prints: terminals get recorded and screen-shared,
# and the citizen's data is not the developer's to keep
_SENSITIVE = {"id_number", "phone"}


def _mask(text: str) -> str:
    keep = 4 if len(text) > 10 else 3
    if len(text) <= keep + 2:
        return "*" * len(text)
    return text[:keep] + re.sub(r"[0-9A-Za-z]", "*", text[keep:-keep]) + text[-keep:]


def _format_parse(result: ParseResult) -> str:
    lines = [f"意图 / intent: {result.intent.name} ({result.intent.confidence:.3f})"]
    for score in result.intent_ranking[:5]:
        lines.append(f"    {score.confidence:.3f}  {score.name}")
    secret_digits = [re.sub(r"[^0-9]", "", str(e.value)) for e in result.entities if e.entity in _SENSITIVE]
    if result.entities:
        lines.append("实体 / entities:")
        for e in result.entities:
            value, text = (_mask(str(e.value)), _mask(e.text)) if e.entity in _SENSITIVE else (e.value, e.text)
            flag = "" if e.valid else f"  [无效 / invalid: {e.error}]"
            lines.append(f"    {e.entity} = {value!r}  '{text}' [{e.start}:{e.end}] ({e.extractor}){flag}")

    def token(t: str) -> str:
        digits = re.sub(r"[^0-9]", "", t)
        return "*" * len(t) if len(digits) >= 3 and any(digits in d for d in secret_digits) else t

    lines.append(f"分词 / tokens: {' | '.join(token(t) for t in result.tokens)}")
    return "\n".join(lines)


def shell_command(project: ProjectOpt = Path(".")) -> None:
    """交互式测试 NLU / type a sentence, see intent ranking and entities (/exit or Ctrl-D to quit)."""
    from nlu.persistence import ModelNotFoundError, load_latest

    try:
        config = _config(project)
        try:
            interpreter = load_latest(project)
        except ModelNotFoundError:
            typer.echo("没有模型，先训练 / no model yet, training first ...")
            _train(project, config)
            interpreter = load_latest(project)
    except _EXPECTED as err:
        raise _fail(err) from None
    typer.echo("输入一句话（/exit 退出） / type a sentence (/exit to quit)")
    for line in sys.stdin:
        text = line.strip()
        if text in ("/exit", "/quit"):
            break
        if not text:
            continue
        typer.echo(_format_parse(interpreter.parse(text)))


evaluate_app = typer.Typer(help="评估 / evaluation", no_args_is_help=True)


@evaluate_app.command("nlu")
def evaluate_nlu(
    project: ProjectOpt = Path("."),
    test_file: Annotated[Path | None, typer.Option("--test-file", help="Rasa nlu.yml to score the latest model on")] = None,
    cross_validation: Annotated[int | None, typer.Option("--cross-validation", "-k", help="K-fold on the project's data")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """评估意图与实体 / score intents and entities: latest model on a test file, or K-fold cross-validation."""
    from nlu.evaluate import cross_validate, evaluate
    from nlu.persistence import load_latest, project_training_data
    from nlu.pipeline import train_interpreter
    from nlu.training_data import TrainingData, load_training_data

    try:
        config = _config(project)
        if cross_validation is not None:
            data = project_training_data(project)
            shared: dict[str, object] = {}

            def train_fn(fold: TrainingData):  # type: ignore[no-untyped-def]
                return train_interpreter(
                    fold, config.pipeline, timezone=config.nlu.timezone, project_dir=project,
                    user_dictionaries=[project / p for p in config.nlu.user_dictionaries], resources=shared,
                )

            report = cross_validate(data, cross_validation, train_fn)
        else:
            if test_file is None:
                raise ValueError("give --test-file or --cross-validation K / 请指定 --test-file 或 --cross-validation")
            report = evaluate(load_latest(project), load_training_data(test_file))
    except _EXPECTED as err:
        raise _fail(err) from None
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False))
        return
    typer.echo(f"样本 / examples: {report.examples}   准确率 / accuracy: {report.accuracy:.4f}   "
               f"macro-F1: {report.macro_f1:.4f}")
    typer.echo(f"{'intent':<28}{'P':>8}{'R':>8}{'F1':>8}{'n':>6}")
    for name, s in sorted(report.per_intent.items()):
        typer.echo(f"{name:<28}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>6}")
    typer.echo(f"{'entity':<28}{'P':>8}{'R':>8}{'F1':>8}{'n':>6}")
    for name, s in sorted(report.entities.items()):
        typer.echo(f"{name:<28}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>6}")
    if report.confused:
        typer.echo("最易混淆 / most confused (gold -> predicted):")
        for gold, pred, n in report.confused:
            typer.echo(f"    {gold} -> {pred}: {n}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("shell")(shell_command)
    app.add_typer(evaluate_app, name="evaluate")
