"""The composition root: one project directory in, one running server out.

It is the only place that knows every package — it loads the NLU model, opens the knowledge base (seeding it
with the bundled demo content on first start), wires forms and their back-office submitter into the engine,
and assembles the FastAPI app with the channels named in config.yml.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text

import assistant.forms  # noqa: F401  (registers FormPolicy in the engine's policy registry)
from assistant.accounts import Accounts, Auth, Login, User
from assistant.agent import Agent, build_agent
from assistant.app import create_app
from assistant.config import ProjectConfig, load_config
from assistant.domain import Domain
from assistant.forms.config import FormsConfig
from assistant.forms.wiring import build_forms_runtime
from assistant.migrations import exclusive, migrate
from assistant.store import make_engine
from connectors.submission import attach_outbox, outbox_for, submitter_for

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    project_dir: Path
    config: ProjectConfig
    interpreter: Any
    agent: Agent
    knowledge: Any | None
    database_url: str
    routers: list[APIRouter] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    # more readiness checks from later parts (e.g. Redis), each returning True when healthy
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    # human handoff and staff accounts (connectors.console.wiring.attach_console)
    handoff: Any = None
    accounts: Any = None
    delivery: Any = None
    # the forms package's runtime (form actions, submitter, outbox), for the outbox worker
    forms: Any = None

    def extra_routers(self) -> list[APIRouter]:
        return self.routers

    def readiness(self) -> dict[str, bool]:
        out = {"nlu_model": self.interpreter is not None, "database": self._database_ok()}
        if self.knowledge is not None:
            out["knowledge_index"] = self.knowledge.live_version is not None
        for name, check in self.checks.items():
            try:
                out[name] = bool(check())
            except Exception:
                out[name] = False
        return out

    def _database_ok(self) -> bool:
        try:
            # bounded connect timeout: /readyz must answer while the database is unreachable
            engine = make_engine(self.database_url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return True
        except Exception:
            return False


def load_or_train_interpreter(project: Path, config: ProjectConfig) -> Any:
    from nlu.persistence import ModelNotFoundError, load_latest, train

    try:
        return load_latest(project)
    except ModelNotFoundError:
        log.info("no trained model in %s/models: training the project first", project)
        train(project, config)
        return load_latest(project)


def open_knowledge(project: Path, config: ProjectConfig, *, seed: bool = True) -> Any:
    """The project's knowledge service. On an empty database the bundled seed content is imported and published
    so a fresh `make run` answers policy questions at once; a live index built with another embedding model (the
    operator changed `knowledge.embedding_model`) is rebuilt rather than refusing to start."""
    from assistant.cli_kb import build_service
    from knowledge.embedders import EmbedderError
    from knowledge.repository import collect_passages

    service = build_service(project)
    try:
        service.reload_if_changed()
    except EmbedderError as err:
        log.warning("the live knowledge index cannot be used (%s): publishing a new version", err)
        service = build_service(project)  # a service whose live slot is still empty
    else:
        if service.live_version is not None:
            return service
    if seed:
        paths = [p if p.is_absolute() else project / p for p in map(Path, config.knowledge.seed_paths)]
        paths = [p for p in paths if p.exists()]
        if paths:
            report = service.import_paths(paths, by="system:seed")
            log.info("seeded the knowledge base: %s", report.totals)
    with service.session_factory() as session:
        # what a publish would build from: published content and drafts waiting to be published
        has_content = bool(collect_passages(session, include_drafts=True).passages)
    if has_content:
        service.publish(by="system:startup")
    else:
        log.warning("the knowledge base is empty: policy questions are answered 'I don't know' until one is published")
    return service


def editor_dependency(accounts: Accounts) -> Callable[..., User]:
    require = Auth(accounts).require_role("admin", "editor")

    # a default, not Annotated[...]: with postponed annotations FastAPI cannot see the local ``require``
    def current_editor(login: Login = Depends(require)) -> User:  # noqa: B008
        return login.user

    return current_editor


def use_redis_locks(runtime: Runtime) -> None:
    """With ``redis.url`` set, conversations are locked in Redis so any replica can take any message."""
    from assistant.redis_client import key, redis_client
    from assistant.redis_locks import RedisLockStore

    settings = runtime.config.redis
    client = redis_client(settings)
    if client is None:
        return
    runtime.agent.locks = RedisLockStore(client, key(settings), lease_s=settings.lock_lease_s,
                                         wait_s=settings.lock_wait_s)


def build_runtime(project: Path | str, *, with_knowledge: bool = True) -> Runtime:
    from knowledge.db import resolve_url

    project = Path(project).resolve()
    config = load_config(project)
    # the schema first (Alembic, under a PostgreSQL advisory lock when replicas start together)
    migrate(resolve_url(config.database.url, project))
    interpreter = load_or_train_interpreter(project, config)
    knowledge = open_knowledge(project, config) if with_knowledge else None
    forms_config: FormsConfig = getattr(config, "forms", None) or FormsConfig()
    domain_path = project / "domain.yml" if (project / "domain.yml").exists() else project / "domain"
    # forms the back office cannot take wait in the outbox table for a background retry
    outbox = outbox_for(forms_config, resolve_url(config.database.url, project))
    forms = build_forms_runtime(project, Domain.load(domain_path), forms_config, submitter_for(forms_config.submission),
                                outbox=outbox)
    agent = build_agent(project, interpreter, knowledge=knowledge, extra_actions=forms.actions)
    runtime = Runtime(project, config, interpreter, agent, knowledge, resolve_url(config.database.url, project))
    runtime.forms = forms
    use_redis_locks(runtime)
    if config.redis.url:
        from assistant.outage import redis_check

        runtime.checks["redis"] = redis_check(config.redis.url)  # /readyz names Redis when it is unreachable
    from connectors.console.wiring import attach_console

    attach_console(runtime)
    from connectors.admin.wiring import attach_admin

    attach_admin(runtime)  # staff login (/api/auth), admin page and API (/admin, /api/admin)
    if knowledge is not None:
        from connectors.editor.wiring import attach_editor
        from knowledge.api import make_router

        # the editor API answers only a logged-in editor or admin (session cookie with CSRF, or bearer token)
        runtime.routers.append(make_router(lambda: knowledge, editor_dependency(runtime.accounts)))
        attach_editor(runtime)  # the content editor's page (/editor) and login (/api/editor)
    from connectors.dashboard import attach_dashboard

    attach_dashboard(runtime)  # GET /api/dashboard (admin, editor) and POST /webchat/feedback (citizens)
    return runtime


@contextmanager
def startup_lock(project: Path) -> Iterator[None]:
    """The schema lock of the project's database (see ``assistant.migrations``), held while a server starts."""
    from knowledge.db import resolve_url

    with exclusive(resolve_url(load_config(project).database.url, project)):
        yield


def create_server_app(project: Path | str, *, runtime: Runtime | None = None) -> FastAPI:
    """The server for ``project``; pass a ``runtime`` already built for it to assemble a second app over the same
    models and database (tests, a restart without reloading models)."""
    if runtime is None:
        # one replica at a time opens its stores and seeds the knowledge base; the others wait and find it done
        with startup_lock(Path(project).resolve()):
            runtime = build_runtime(project)
    server = getattr(runtime.config, "server", None)
    channels = getattr(runtime.config, "channels", None)
    from assistant.server_config import ServerConfig, default_channels

    app = create_app(runtime, server or ServerConfig(), channels if channels is not None else default_channels())
    from connectors.console.wiring import bind_channels

    bind_channels(runtime, app.state.channels)
    attach_outbox(runtime, app)  # kept forms are submitted in the background and the citizen told (forms.outbox)
    from connectors.admin.wiring import install_audit

    install_audit(app, runtime)  # every successful privileged request of a logged-in user is audited
    from assistant.retention import schedule_daily

    schedule_daily(app, runtime)  # expired citizens' data deleted daily, by one replica (privacy.daily_run)
    from connectors.redis_wiring import attach_redis

    attach_redis(runtime, app)  # several replicas: pub/sub, cross-replica pushes, WeChat state (no-op without Redis)
    return app


def register(app: Any) -> None:
    @app.command("serve")
    def serve(
        project: Annotated[Path, typer.Option("--project", "-p", help="project directory / 项目目录")] = Path("."),
        host: Annotated[str | None, typer.Option("--host", help="default: server.host in config.yml")] = None,
        port: Annotated[int | None, typer.Option("--port", help="default: server.port in config.yml")] = None,
    ) -> None:
        """Start the HTTP server with every channel in config.yml / 启动服务"""
        import uvicorn
        from uvicorn.config import LOGGING_CONFIG

        from assistant.log_masking import install, with_personal_data_filter

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        install()
        app_ = create_server_app(project)
        server = app_.state.runtime.config.server
        # uvicorn replaces its loggers' handlers from log_config when it starts: the filter goes into that config
        log_config = with_personal_data_filter(LOGGING_CONFIG)
        uvicorn.run(app_, host=host or server.host, port=port or server.port, log_level="info", log_config=log_config)
