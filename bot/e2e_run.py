"""Running e2e test cases against a started runtime, and the ``test`` verb."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.dialogue.engine import Engine
from bot.e2e import CaseResult, StubRunner, TestCase, check_assertion, check_slots, load_cases
from bot.errors import FlowError

if TYPE_CHECKING:
    from bot.dialogue.events import BotUttered, Event
    from bot.manager import DialogueManager


class _Turn:
    """The bot messages of the latest user step and how many were checked."""

    def __init__(self, text: str, events: list[Event], replies: list[BotUttered]) -> None:
        self.text = text
        self.events = events
        self.replies = replies
        self.checked = 0
        self.expects_bot = False

    def leftover(self) -> str | None:
        if not self.expects_bot or self.checked >= len(self.replies):
            return None
        extra = [r.response or r.text for r in self.replies[self.checked :]]
        return f"after '{self.text}' the bot also said {extra}"

    def next_reply(self, want: str) -> BotUttered | str:
        self.expects_bot = True
        if self.checked >= len(self.replies):
            said = [r.response or r.text for r in self.replies]
            return f"after '{self.text}' expected {want!r} but the bot said only {said}"
        reply = self.replies[self.checked]
        self.checked += 1
        return reply


def _check_bot_step(turn: _Turn, step: dict[str, Any]) -> str | None:
    if "utter" in step:
        reply = turn.next_reply(str(step["utter"]))
        if isinstance(reply, str):
            return reply
        if reply.response != step["utter"]:
            return f"expected {step['utter']} but the bot said {reply.response or reply.text!r}"
    elif "bot" in step:
        reply = turn.next_reply(str(step["bot"]))
        if isinstance(reply, str):
            return reply
        if reply.text.strip() != str(step["bot"]).strip():
            return f"expected bot text {step['bot']!r} but got {reply.text!r}"
    elif "slot_was_set" in step or "slot_was_not_set" in step:
        negate = "slot_was_not_set" in step
        return check_slots(
            turn.events, step["slot_was_not_set" if negate else "slot_was_set"], negate
        )
    return None


async def run_case(manager: DialogueManager, case: TestCase, sender: str) -> CaseResult:
    """Run one case in a fresh conversation; stop at the first mismatch."""
    base = manager.engine
    engine = Engine(
        base.project, StubRunner(case.stubs, base.actions), base.answerer, base.settings
    )
    state = engine.new_state()
    state.slots.update(case.slots)
    turn: _Turn | None = None
    for step in case.steps:
        error: str | None = None
        if "user" in step:
            error = turn.leftover() if turn else None
            if error is None:
                parse = await manager.parse(str(step["user"]))
                result = await engine.handle(state, parse, sender, (), dict(case.metadata))
                state = result.state
                turn = _Turn(str(step["user"]), result.events, result.replies)
                for assertion in step.get("assertions") or []:
                    error = error or check_assertion(turn.events, assertion)
        elif turn is None:
            error = "a bot step comes before any user step"
        else:
            error = _check_bot_step(turn, step)
        if error:
            return CaseResult(case, error)
    return CaseResult(case, turn.leftover() if turn else None)


def collect_files(path: Path) -> list[Path]:
    """Return the test files under ``path`` (a file or a folder)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FlowError(str(path), None, "no such test file or folder")
    return sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yml", ".yaml"))


def register(subparsers: Any) -> None:
    """Add the ``test e2e`` verb."""
    test = subparsers.add_parser("test", help="run conversation tests")
    sub = test.add_subparsers(dest="test_verb", metavar="SUBVERB", required=True)
    e2e = sub.add_parser("e2e", help="run e2e tests in Rasa's format")
    e2e.add_argument("path", type=Path, nargs="?", default=None, help="file or folder of tests")
    e2e.add_argument("--bot", default=None, help="bot project folder (default from config)")
    e2e.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    e2e.set_defaults(handler=_e2e)


def _e2e(args: argparse.Namespace) -> int:
    from bot.cli_run import configured

    config = configured(args)
    path = args.path or Path(config.bot.path) / "tests"
    files = collect_files(path)
    cases = [case for file in files for case in load_cases(file)]
    return asyncio.run(_run_all(config, cases, args.fail_fast))


async def _run_all(config: Any, cases: list[TestCase], fail_fast: bool) -> int:
    from bot.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="helpline-e2e-") as tmp:
        storage = config.storage.model_copy(update={"url": f"sqlite+aiosqlite:///{tmp}/e2e.db"})
        config = config.model_copy(update={"storage": storage})
        passed = failed = 0
        async with Runtime(config) as runtime:
            for index, case in enumerate(cases):
                # Every case starts from the same demo data, whatever earlier ones changed.
                await runtime.seed_demo_data()
                result = await run_case(runtime.manager, case, f"e2e-{index}")
                if result.error is None:
                    passed += 1
                    print(f"PASSED {case.name}")
                else:
                    failed += 1
                    print(f"FAILED {case.name} ({case.path}:{case.line}): {result.error}")
                    if fail_fast:
                        break
        print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
