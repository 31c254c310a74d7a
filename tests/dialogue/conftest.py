"""Shared fixtures for the dialogue engine tests: the fixture project and small event builders."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.domain import Domain
from assistant.rasa_yaml import StoryData, load_story_files

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "dialogue" / "project"


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return PROJECT


@pytest.fixture(scope="session")
def domain() -> Domain:
    return Domain.load(PROJECT / "domain.yml")


@pytest.fixture(scope="session")
def story_data() -> StoryData:
    return load_story_files([PROJECT / "data"])
