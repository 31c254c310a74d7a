"""The NLU commands through typer's CliRunner, on the small fixture project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app

FIXTURE = Path(__file__).parent / "fixtures" / "nlu" / "project"
runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "proj"
    shutil.copytree(FIXTURE, root)
    return root


def test_shell_trains_first_then_parses(project: Path) -> None:
    result = runner.invoke(app, ["shell", "--project", str(project)], input="您好\n我在海淀区想取公积金\n/exit\n不会读到这里\n")
    assert result.exit_code == 0, result.output
    assert "training first" in result.output
    assert "intent: greet" in result.output
    assert "intent: housing_fund" in result.output
    assert "district = '海淀区'" in result.output
    assert "不会读到这里" not in result.output
    assert (project / "models" / "latest").exists()


def test_train_writes_a_new_version(project: Path) -> None:
    before = set((project / "models").glob("nlu-*")) if (project / "models").exists() else set()
    result = runner.invoke(app, ["train", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "CountVectorsFeaturizer" in result.output  # reported, not silently ignored
    assert len(set((project / "models").glob("nlu-*")) - before) == 1


def test_evaluate_test_file_json(project: Path) -> None:
    test_file = FIXTURE / "data" / "nlu.yml"
    result = runner.invoke(app, ["evaluate", "nlu", "--project", str(project), "--test-file", str(test_file), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"accuracy", "macro_f1", "per_intent", "entities"} <= set(data)
    assert data["accuracy"] > 0.9  # scored on its own training data
    assert "greet" in data["per_intent"] and "micro" in data["entities"]


def test_evaluate_cross_validation_table(project: Path) -> None:
    result = runner.invoke(app, ["evaluate", "nlu", "--project", str(project), "--cross-validation", "2"])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "request_human" in result.output


def test_bad_training_data_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text("nlu:\n- intent: a\n  examples: |\n    - [坏\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert "nlu.yml:4" in result.output and "unbalanced" in result.output


def test_evaluate_needs_a_source(project: Path) -> None:
    result = runner.invoke(app, ["evaluate", "nlu", "--project", str(project)])
    assert result.exit_code == 1 and "--test-file" in result.output


def test_shell_output_masks_id_and_phone_numbers() -> None:
    from assistant.cli_nlu import _format_parse
    from nlu.types import Entity, IntentScore, ParseResult

    text = "身份证11010519491231002X电话13800138000"
    result = ParseResult(
        text=text,
        intent=IntentScore("inform", 0.9),
        intent_ranking=(IntentScore("inform", 0.9),),
        entities=(
            Entity("id_number", "11010519491231002X", 3, 21, "11010519491231002X", "IdCardExtractor"),
            Entity("phone", "13800138000", 23, 34, "13800138000", "PhoneExtractor"),
        ),
        tokens=("身份证", "11010519491231002x", "电话", "13800138000"),
    )
    shown = _format_parse(result)
    assert "11010519491231002" not in shown.upper() and "13800138000" not in shown
    assert "1101" in shown and "002X" in shown and "id_number" in shown


def test_train_names_unsupported_dialogue_features(tmp_path: Path) -> None:
    """A Rasa project with TEDPolicy trains, and the policy it will not use is named at train time."""
    root = tmp_path / "rasa-project"
    shutil.copytree(Path(__file__).parent / "fixtures" / "dialogue" / "project", root)
    result = runner.invoke(app, ["train", "--project", str(root)])
    assert result.exit_code == 0, result.output
    assert "TEDPolicy" in result.output and "不支持 / unsupported" in result.output
