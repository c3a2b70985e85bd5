"""build_stack with ``llm.local.url``: a pool over the workers stands in for the local model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.encoder import Encoder, prepare_encoder
from bot.storage.store import Store
from llm.factory import LocalModelProxy, build_stack
from llm.pool import WorkerPool
from llm.settings import LLMSettings
from tests.llm.cloud.fake_openai import FakeOpenAI, stream

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(prepare_encoder(ROOT / "var" / "models" / "minilm-int8"))


async def test_with_a_url_no_model_is_loaded_and_the_pool_answers(
    store: Store, encoder: Encoder, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        stream(
            ["Returns are free ", "within 30 days [1]."], logprobs=[[("R", -0.1)], [("w", -0.1)]]
        )
    )
    settings = LLMSettings.model_validate({"local": {"url": fake_openai.base_url}})
    proxy = LocalModelProxy("helpline-local")
    empty_models = tmp_path / "models"  # nothing prepared here: loading would have to export
    stack = await build_stack(
        settings,
        store=store,
        encoder=encoder,
        kb_dir=ROOT / "flows" / "kb",
        models_dir=empty_models,
        proxy=proxy,
    )
    try:
        assert isinstance(stack.local, WorkerPool)
        assert proxy.model is stack.local
        answer = await stack.answerer.answer("How long do I have to return an item?", [], {})
    finally:
        await stack.close()
    assert answer is not None
    assert answer.route == "local"
    assert answer.text.startswith("Returns are free within 30 days.")
    assert not empty_models.exists()
    assert len(fake_openai.chat_requests) == 1
