from pathlib import Path

import pytest

from assistant.config import ConfigError, ProjectConfig, load_config, parse_config


def test_project_without_config_gets_default_chinese_pipeline(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.language == "zh"
    names = [c.name for c in cfg.pipeline]
    assert "JiebaTokenizer" in names and "IntentClassifier" in names


def test_unknown_key_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"knowledge": {"embeding_model": "x"}})
    assert "knowledge.embeding_model" in str(err.value)


def test_bad_value_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"language": "fr"})
    assert "language" in str(err.value)


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("pipeline: [\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(tmp_path)


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("language: zh\npipeline:\npolicies:\n", encoding="utf-8")
    assert load_config(tmp_path).pipeline == ProjectConfig().pipeline


def test_repository_config_is_valid() -> None:
    load_config(Path(__file__).resolve().parents[1])


def test_environment_overrides_database_and_redis_urls() -> None:
    env = {"GOV_ASSISTANT_DATABASE_URL": "postgresql+psycopg://u@db/gov", "GOV_ASSISTANT_REDIS_URL": "redis://r:6379/0"}
    config = parse_config({"database": {"url": "sqlite:///var/x.db"}}, environ=env)
    assert config.database.url == "postgresql+psycopg://u@db/gov"
    assert config.redis.url == "redis://r:6379/0"
    assert parse_config({}, environ={}).redis.url is None


def test_unknown_redis_key_is_named() -> None:
    with pytest.raises(ConfigError, match="redis.host"):
        parse_config({"redis": {"host": "x"}}, environ={})
