"""build_stack with ``llm.local.url``: a pool over the workers stands in for the local model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.encoder import Encoder, prepare_encoder
from bot.storage.store import Store
from llm.factory import LocalModelProxy, build_stack
from llm.pool import WorkerPool
from llm.settings import LLMSettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.fake_openai import FakeOpenAI, ok, stream

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


async def test_the_cloud_chain_redacts_the_bots_own_entities(
    store: Store, encoder: Encoder, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(ok("About [ORDER_ID_1] and [ORDER_ID_2]."))
    settings = LLMSettings.model_validate(
        {
            "local": {"enabled": False},
            "cloud": {"providers": [{"name": "c", "base_url": fake_openai.base_url, "model": "m"}]},
        }
    )
    stack = await build_stack(
        settings,
        store=store,
        encoder=encoder,
        kb_dir=tmp_path / "kb",
        models_dir=tmp_path / "models",
        entity_patterns={"order_id": [r"\b[Hh][Ll][- ]?\d{5}\b"], "email": ["@"]},
    )
    try:
        assert stack.cloud is not None
        question = [ChatMessage("user", "Where are hl10005 and HL 10004?")]
        reply = await stack.cloud.complete(question, GenerationSettings(max_new_tokens=16))
    finally:
        await stack.close()
    assert reply.text == "About hl10005 and HL 10004."
    sent = fake_openai.chat_requests[0].body["messages"][0]["content"]
    assert sent == "Where are [ORDER_ID_1] and [ORDER_ID_2]?"
