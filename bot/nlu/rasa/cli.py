"""The ``helpline rasa`` verb: ``train`` the bot's Rasa NLU model, ``wanted`` for make."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``rasa`` verb with its ``train`` and ``wanted`` sub-verbs."""
    rasa = subparsers.add_parser("rasa", help="the Rasa NLU backend")
    sub = rasa.add_subparsers(dest="rasa_verb", metavar="SUBVERB", required=True)
    train = sub.add_parser("train", help="train the bot's Rasa NLU model (cached by content)")
    train.add_argument("--bot", default=None, help="bot project folder (default from config)")
    train.add_argument("--epochs", type=int, default=None, help="DIET epochs (nlu.rasa.epochs)")
    train.set_defaults(handler=_train)
    wanted = sub.add_parser(
        "wanted", help="exit 0 when the config runs a Rasa sidecar (needs .venv-rasa), else 1"
    )
    wanted.set_defaults(handler=_wanted)


def _train(args: argparse.Namespace) -> int:
    from bot.cli_run import configured
    from bot.errors import NLUError
    from bot.nlu.rasa.factory import RASA_MODELS
    from bot.nlu.rasa.train import train_model
    from bot.runtime import Runtime

    config = configured(args)
    project = Runtime(config).load_project()
    if not project.nlu_files:
        raise NLUError(f"the bot at {project.root} has no NLU data to train on")
    settings = config.nlu.rasa
    model = train_model(
        project.nlu_files,
        config.models.cache_dir / RASA_MODELS,
        venv=settings.venv,
        epochs=args.epochs or settings.epochs,
        echo=sys.stderr,
    )
    print(model)
    return 0


def _wanted(args: argparse.Namespace) -> int:
    from bot.config import load_config

    config = load_config(args.config)
    return 0 if config.nlu.backend == "rasa" and not config.nlu.rasa.url else 1
