"""The ``kb evaluate`` verb: how well the bot answers questions from its knowledge base.

Every question runs as the first message of a fresh conversation through the
whole turn (NLU, routing, flows, the answerer), with the configured bot and
models, on a throwaway SQLite database. See :mod:`llm.kb_eval` for the
outcomes and figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from bot.dialogue.engine import Engine
from bot.dialogue.events import FlowStarted
from bot.e2e import StubRunner

if TYPE_CHECKING:
    from bot.config import Config
    from bot.runtime import Runtime

MODES = ("extractive", "generative", "auto")


def register(subparsers: Any) -> None:
    """Add ``kb evaluate``."""
    kb = subparsers.add_parser("kb", help="the knowledge base")
    sub = kb.add_subparsers(dest="kb_verb", metavar="SUBVERB", required=True)
    evaluate = sub.add_parser("evaluate", help="score the bot's answers to a question set")
    evaluate.add_argument(
        "questions", type=Path, nargs="+", help="YAML question sets (see tests/data/kb)"
    )
    evaluate.add_argument("--bot", default=None, help="bot project folder (default from config)")
    evaluate.add_argument(
        "--mode", choices=MODES, default=None, help="llm.answer_mode (default from config)"
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON, outcomes included")
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from bot.cli_run import configured

    kb_eval = importlib.import_module("llm.kb_eval")
    try:
        questions = [q for path in args.questions for q in kb_eval.load_questions(path)]
    except kb_eval.QuestionSetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = configured(args)
    if args.mode is not None:
        config = config.model_copy(update={"llm": {**config.llm, "answer_mode": args.mode}})
    mode = args.mode or str(config.llm.get("answer_mode", "auto"))
    summary = asyncio.run(_run(config, questions, kb_eval))
    if args.json:
        print(json.dumps({"mode": mode, **summary}, indent=2))
    else:
        print(kb_eval.report(summary, mode))
    return 0


async def _run(config: Config, questions: list[Any], kb_eval: Any) -> dict[str, Any]:
    from bot.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="helpline-kb-") as tmp:
        storage = config.storage.model_copy(update={"url": f"sqlite+aiosqlite:///{tmp}/kb.db"})
        config = config.model_copy(update={"storage": storage})
        async with Runtime(config) as runtime:
            outcomes = [
                await _one(runtime, question, index, kb_eval)
                for index, question in enumerate(tqdm(questions, desc="questions", unit="q"))
            ]
    summary: dict[str, Any] = kb_eval.summarize(outcomes)
    return summary


async def _one(runtime: Runtime, question: Any, index: int, kb_eval: Any) -> Any:
    manager = runtime.manager
    base = manager.engine
    engine = Engine(base.project, StubRunner({}, base.actions), base.answerer, base.settings)
    parse = await manager.parse(question.question)
    result = await engine.handle(engine.new_state(), parse, f"kb-eval-{index}", (), {})
    text = "\n".join(reply.text for reply in result.replies)
    flows = [e.flow_id for e in result.events if isinstance(e, FlowStarted)]
    started = any(not flow.startswith("pattern_") for flow in flows)
    declined = result.answer is not None and result.answer.declined
    route = "human" if result.handoff_reason else result.route
    outcome = kb_eval.classify(question, text, route, declined, started)
    confidence = correct = vector = quote = None
    candidate = getattr(base.answerer, "candidate", None)
    if result.answer is not None and candidate is not None:
        found = await candidate(question.question)
        if found is not None:
            quote, features = found
            confidence = importlib.import_module("llm.confidence").score(features)
            correct = question.answerable and question.matches(quote)
            vector = tuple(round(v, 4) for v in features.vector())
    return kb_eval.Outcome(
        question.id, question.answerable, outcome, route, text, confidence, correct, vector, quote
    )
