"""The local ONNX runtime on a tiny random Llama exported with Optimum."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.errors import ModelBusy
from llm.local.chat_template import PromptCodec, StopMatcher
from llm.local.runtime import LocalModel
from llm.types import ChatMessage, GenerationSettings, TokenInfo
from tests.llm.local.tiny_llm import build_tiny_model

ROOT = Path(__file__).parents[3]
MESSAGES = (
    ChatMessage("system", "You help customers."),
    ChatMessage("user", "Where is my parcel? Le café 😀"),
)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llm")


@pytest.fixture
async def model(tiny_dir: Path) -> AsyncIterator[LocalModel]:
    async with LocalModel.load(tiny_dir / "onnx", threads=1) as loaded:
        yield loaded


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (the test's timeout bounds it)."""
    for _ in range(1_000_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("The condition never held.")


def ids_of(completion_tokens: tuple[TokenInfo, ...] | list[TokenInfo]) -> list[int]:
    return [t.token_id for t in completion_tokens]


def torch_greedy(torch_dir: Path, prompt_ids: list[int], steps: int, eos: int) -> list[int]:
    """A plain PyTorch greedy loop with the KV cache, as the reference."""
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(torch_dir).eval()
    out: list[int] = []
    with torch.no_grad():
        result = model(torch.tensor([prompt_ids]), use_cache=True)
        for _ in range(steps):
            token = int(result.logits[0, -1].argmax())
            if token == eos:
                break
            out.append(token)
            result = model(
                torch.tensor([[token]]), past_key_values=result.past_key_values, use_cache=True
            )
    return out


def test_prompt_matches_transformers_chat_template(model: LocalModel, tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(tiny_dir / "onnx")
    payload = [{"role": m.role, "content": m.content} for m in MESSAGES]
    text = reference.apply_chat_template(payload, add_generation_prompt=True, tokenize=False)
    ids = reference.apply_chat_template(payload, add_generation_prompt=True, tokenize=True)
    assert model.render_prompt(MESSAGES) == text
    assert text.startswith("<s><|im_start|>system")
    assert model.count_tokens(text) == len(ids)
    assert ids.count(reference.bos_token_id) == 1


async def test_greedy_matches_pytorch(model: LocalModel, tiny_dir: Path) -> None:
    completion = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=20))
    codec = PromptCodec.from_folder(tiny_dir / "onnx")
    prompt_ids = codec.encode(model.render_prompt(MESSAGES))
    expected = torch_greedy(tiny_dir / "torch", prompt_ids, 20, codec.token_id("<|im_end|>") or -1)
    assert len(expected) >= 10
    assert ids_of(completion.tokens) == expected
    assert completion.prompt_tokens == len(prompt_ids)
    assert all(t.logprob < 0.0 for t in completion.tokens)
    assert completion.latency_ms >= completion.ttft_ms > 0.0


async def test_stream_equals_complete_and_full_decode(model: LocalModel, tiny_dir: Path) -> None:
    settings = GenerationSettings(max_new_tokens=40)
    completion = await model.complete(MESSAGES, settings)
    streamed = [token async for token in model.stream(MESSAGES, settings)]
    codec = PromptCodec.from_folder(tiny_dir / "onnx")
    text = "".join(t.text for t in streamed)
    assert text == completion.text
    real = [t.token_id for t in streamed if t.token_id >= 0]
    assert real == ids_of(completion.tokens)
    assert text == codec.tokenizer.decode(real, skip_special_tokens=True)


def test_incremental_decoder_never_splits_a_character(tiny_dir: Path) -> None:
    codec = PromptCodec.from_folder(tiny_dir / "onnx")
    text = "Le café coûte 3 € — 東京 😀🚀 ok"
    decoder = codec.decoder()
    pieces = [decoder.push(i) for i in codec.encode(text)]
    pieces.append(decoder.flush())
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert "" in pieces  # Some byte tokens only complete a character later.


def test_stop_matcher_holds_back_possible_prefixes() -> None:
    matcher = StopMatcher(["\nUser:", "##"])
    assert matcher.feed("Hello") == "Hello"
    assert matcher.feed(" there\nUs") == " there"
    assert matcher.feed("ually #") == "\nUsually "
    assert matcher.feed("# more") == ""
    assert matcher.stopped
    assert matcher.feed("ignored") == ""
    tail = StopMatcher(["STOP"])
    assert tail.feed("a ST") == "a "
    assert tail.flush() == "ST"


async def test_stop_string_is_trimmed(model: LocalModel) -> None:
    full = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=40))
    stop = full.text[12:15]
    assert len(stop) == 3
    cut = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=40, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.completion_tokens < full.completion_tokens


async def test_max_new_tokens(model: LocalModel) -> None:
    completion = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=3))
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 3
    assert len(completion.tokens) == 3


async def test_eos_from_generation_config_stops(
    model: LocalModel, tiny_dir: Path, tmp_path: Path
) -> None:
    reference = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=20))
    ids = ids_of(reference.tokens)
    index = next(i for i in range(3, len(ids)) if ids[i] not in ids[:i])
    folder = shutil.copytree(tiny_dir / "onnx", tmp_path / "model")
    config = json.loads((folder / "generation_config.json").read_text())
    config["eos_token_id"] = [config["eos_token_id"], ids[index]]
    (folder / "generation_config.json").write_text(json.dumps(config))
    async with LocalModel.load(folder, threads=1) as stopping:
        completion = await stopping.complete(MESSAGES, GenerationSettings(max_new_tokens=20))
    assert completion.finish_reason == "stop"
    assert ids_of(completion.tokens) == ids[:index]
    assert completion.completion_tokens == index + 1


async def test_sampling_is_reproducible_with_a_seed(model: LocalModel) -> None:
    def settings(seed: int) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=20, temperature=1.0, top_p=0.9, seed=seed)

    first = await model.complete(MESSAGES, settings(7))
    again = await model.complete(MESSAGES, settings(7))
    other = await model.complete(MESSAGES, settings(8))
    greedy = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=20))
    assert ids_of(first.tokens) == ids_of(again.tokens)
    assert ids_of(first.tokens) != ids_of(other.tokens)
    assert ids_of(first.tokens) != ids_of(greedy.tokens)


async def test_closing_the_stream_cancels_and_frees_the_slot(
    model: LocalModel, caplog: pytest.LogCaptureFixture
) -> None:
    long = GenerationSettings(max_new_tokens=900)
    assert (await model.complete(MESSAGES, long)).finish_reason == "length"
    caplog.set_level(logging.DEBUG, logger="llm.local.runtime")
    async with contextlib.aclosing(model.stream(MESSAGES, long)) as tokens:
        async for _ in tokens:
            break
    await until(lambda: not model.gate.busy)  # The worker frees the slot once stopped.
    task = asyncio.create_task(model.complete(MESSAGES, long))
    # Acquiring the slot and starting the worker happen in one step of the task.
    await until(lambda: model.gate.busy)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await model.complete(MESSAGES, GenerationSettings(max_new_tokens=5))
    assert after.completion_tokens == 5
    ended = [r.getMessage().split() for r in caplog.records if r.msg.startswith("Generated")]
    assert [words[-1] for words in ended[:2]] == ["cancelled.", "cancelled."]
    assert all(int(words[1]) < 900 for words in ended[:2])


async def test_full_queue_refuses_at_once(tiny_dir: Path) -> None:
    async with LocalModel.load(tiny_dir / "onnx", threads=1, max_queue=1) as busy:
        await busy.gate.acquire()  # Someone holds the model.
        waiting = asyncio.create_task(busy.complete(MESSAGES, GenerationSettings(max_new_tokens=2)))
        await until(lambda: busy.queue_depth == 1)
        with pytest.raises(ModelBusy, match="queue is full"):
            await busy.complete(MESSAGES, GenerationSettings(max_new_tokens=2))
        busy.gate.release()
        assert (await waiting).completion_tokens == 2
        assert busy.queue_depth == 0


async def test_waiting_too_long_is_busy(tiny_dir: Path) -> None:
    async with LocalModel.load(tiny_dir / "onnx", threads=1, max_wait_s=0.05) as busy:
        await busy.gate.acquire()
        with pytest.raises(ModelBusy, match="Waited more than"):
            await busy.complete(MESSAGES, GenerationSettings(max_new_tokens=2))
        assert busy.queue_depth == 0
        busy.gate.release()
        assert (await busy.complete(MESSAGES, GenerationSettings(max_new_tokens=2))).text


def test_serving_imports_no_torch(tiny_dir: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from llm.local.runtime import LocalModel\n"
        "from llm.types import ChatMessage, GenerationSettings, TokenInfo\n"
        "async def main():\n"
        f"    async with LocalModel.load(Path({str(tiny_dir / 'onnx')!r}), threads=1) as m:\n"
        "        s = GenerationSettings(max_new_tokens=5, temperature=0.8, top_p=0.9, seed=1)\n"
        "        await m.complete([ChatMessage('user', 'hi')], s)\n"
        "        [t async for t in m.stream([ChatMessage('user', 'hi')], s)]\n"
        "asyncio.run(main())\n"
        "print([m for m in ('torch', 'transformers', 'optimum') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _prepared_model() -> Path | None:
    base = ROOT / "var" / "models" / "llm"
    found = sorted(
        p.parent for p in base.glob("**/*.onnx") if (p.parent / "tokenizer.json").is_file()
    )
    return found[0] if found else None


@pytest.mark.skipif(_prepared_model() is None, reason="no prepared model under var/models/llm")
async def test_prepared_smollm2_answers() -> None:
    folder = _prepared_model()
    assert folder is not None
    async with LocalModel.load(folder, threads=2) as smol:
        completion = await smol.complete(
            [ChatMessage("user", "What is the capital of France?")],
            GenerationSettings(max_new_tokens=24),
        )
    assert "Paris" in completion.text
