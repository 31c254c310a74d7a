"""Fixtures for the privacy tests: one database per test, SQLite or PostgreSQL (``pg_url``), with every table that
holds citizens' data created by its real owner; citizens' conversations written through the real stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from assistant.store import make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'privacy.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'privacy.db'}"


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


FIXTURE_PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "dialogue" / "project"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the dialogue fixture project, for the tests that run the engine after an erase or a trim."""
    target = tmp_path_factory.mktemp("proj") / "project"
    shutil.copytree(FIXTURE_PROJECT, target)
    return target


@pytest.fixture(scope="module")
def interpreter(project: Path) -> Any:
    """Its NLU, trained without the sentence encoder (seconds)."""
    from assistant.config import load_config
    from nlu.persistence import load_interpreter, train

    return load_interpreter(train(project, load_config(project), encoder_factory=None), encoder_factory=None)
