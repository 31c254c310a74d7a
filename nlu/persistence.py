"""Versioned NLU model artefacts in ``PROJECT/models/``, loadable without the training data.

Layout (a directory, so loading needs no unpacking)::

    models/nlu-20261127-193000/
        metadata.json          format version, config hash, training-data hash, intents, entities, pipeline
        00-ChineseNormalizer/  one directory per component: .npz arrays, JSON, the CRF model, dictionaries
        ...
    models/latest              the name of the newest artefact

No pickles: weights are ``.npz`` (loaded with ``allow_pickle=False``), everything else JSON or text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from nlu.builtins import default_registry
from nlu.components import BuildContext, Encoder, PipelineError, Registry
from nlu.config import ComponentConfig, NLUSettings
from nlu.pipeline import Interpreter, train_interpreter, use_encoder
from nlu.training_data import TrainingData, load_training_data

FORMAT_VERSION = 1
MODELS_DIR = "models"
LATEST = "latest"


class ModelNotFoundError(FileNotFoundError):
    """No trained model where one was expected."""


class ProjectSettings(Protocol):
    """What training needs from ``assistant.config.ProjectConfig`` (``nlu`` imports nothing of ours)."""

    pipeline: list[ComponentConfig]
    nlu: NLUSettings


def config_hash(pipeline: Sequence[ComponentConfig], settings: NLUSettings) -> str:
    blob = json.dumps(
        {"pipeline": [c.model_dump() for c in pipeline], "nlu": settings.model_dump()},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def project_training_data(project_dir: Path) -> TrainingData:
    return load_training_data(Path(project_dir) / "data")


def train(
    project_dir: Path | str,
    config: ProjectSettings,
    *,
    data: TrainingData | None = None,
    encoder_factory: Callable[[], Encoder] | None = use_encoder,
) -> Path:
    """Train the project's NLU from ``data/`` and write a new artefact; returns its directory."""
    project_dir = Path(project_dir)
    data = data if data is not None else project_training_data(project_dir)
    if not data.examples:
        raise PipelineError(f"{project_dir / 'data'}: no NLU training examples / 没有 NLU 训练示例")
    interpreter = train_interpreter(
        data,
        config.pipeline,
        timezone=config.nlu.timezone,
        project_dir=project_dir,
        user_dictionaries=[project_dir / p for p in config.nlu.user_dictionaries],
        encoder_factory=encoder_factory,
    )
    extra = {
        "config_hash": config_hash(config.pipeline, config.nlu),
        "training_data_hash": data.fingerprint(),
        "intents": list(data.intents),
        "entities": list(data.entity_types),
        "examples": len(data.examples),
    }
    return save(interpreter, project_dir / MODELS_DIR, extra)


def save(interpreter: Interpreter, models_dir: Path, extra: dict[str, Any] | None = None) -> Path:
    models_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    name = f"nlu-{created:%Y%m%d-%H%M%S}"
    target = models_dir / name
    suffix = 1
    while target.exists():
        target = models_dir / f"{name}-{suffix}"
        suffix += 1
    tmp = models_dir / f".tmp-{target.name}-{os.getpid()}"
    tmp.mkdir()
    try:
        entries = []
        for i, (spec, component) in enumerate(interpreter.components):
            sub = f"{i:02d}-{spec.name}"
            settings = component.to_disk(tmp / sub)
            entries.append({"name": spec.name, "dir": sub, "settings": settings})
        metadata = {
            "format_version": FORMAT_VERSION,
            "created": created.isoformat(),
            "timezone": interpreter.context.timezone,
            "pipeline": entries,
            "warnings": interpreter.warnings,
            **(extra or {}),
        }
        (tmp / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.rename(target)  # atomic: a reader never sees half an artefact
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = models_dir / f".{LATEST}.tmp"
    pointer.write_text(target.name, encoding="utf-8")
    pointer.replace(models_dir / LATEST)
    return target


def read_metadata(path: Path | str) -> dict[str, Any]:
    meta = Path(path) / "metadata.json"
    if not meta.exists():
        raise ModelNotFoundError(f"{path}: not an NLU model (no metadata.json) / 不是 NLU 模型目录")
    return json.loads(meta.read_text(encoding="utf-8"))


def load_interpreter(
    path: Path | str,
    *,
    registry: Registry | None = None,
    encoder_factory: Callable[[], Encoder] | None = use_encoder,
) -> Interpreter:
    path = Path(path)
    metadata = read_metadata(path)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise PipelineError(
            f"{path}: model format {metadata.get('format_version')} is not {FORMAT_VERSION}; retrain / 模型格式不兼容，请重新训练"
        )
    registry = registry or default_registry()
    ctx = BuildContext(timezone=metadata.get("timezone", "Asia/Shanghai"), encoder_factory=encoder_factory)
    ctx.warnings.extend(metadata.get("warnings", []))
    components = []
    for entry in metadata["pipeline"]:
        spec = registry.get(entry["name"])
        components.append((spec, spec.loader(path / entry["dir"], dict(entry["settings"]), ctx)))
    return Interpreter(components, ctx)


def latest_model(project_dir: Path | str) -> Path:
    models_dir = Path(project_dir) / MODELS_DIR
    pointer = models_dir / LATEST
    if pointer.exists():
        target = models_dir / pointer.read_text(encoding="utf-8").strip()
        if (target / "metadata.json").exists():
            return target
    candidates = sorted(p for p in models_dir.glob("nlu-*") if (p / "metadata.json").exists()) if models_dir.exists() else []
    if not candidates:
        raise ModelNotFoundError(
            f"{models_dir}: no trained NLU model; run `gov-assistant train` / 没有已训练的模型，请先运行 gov-assistant train"
        )
    return candidates[-1]


def load_latest(project_dir: Path | str, **kwargs: Any) -> Interpreter:
    return load_interpreter(latest_model(project_dir), **kwargs)
