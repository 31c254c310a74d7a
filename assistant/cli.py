"""``gov-assistant``: the command line. Each area registers its own commands; this module only assembles them."""

from __future__ import annotations

import os

import typer

# Offline by construction: a model name that is not a local folder must fail at once, never reach for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(help="gov-assistant: 政务服务智能助手 / government-services assistant", no_args_is_help=True)


def _register_all() -> None:
    # one line per area; each module exposes register(app)
    from assistant import cli_nlu

    cli_nlu.register(app)
    from assistant import cli_kb

    cli_kb.register(app)
    from assistant import cli_dialogue

    cli_dialogue.register(app)
    from assistant import cli_users

    cli_users.register(app)
    from assistant import cli_privacy

    cli_privacy.register(app)
    # the server is the composition root and lives at the edge; imported here, the CLI being the top of the stack
    from connectors import server

    server.register(app)


_register_all()


def main() -> None:
    app()
