from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np
import pytest

from bot.errors import NLUError
from bot.nlu.classifier import IntentClassifier, train_classifier
from bot.nlu.embedded import EmbeddedNLU

if TYPE_CHECKING:
    from pathlib import Path

    from bot.dialogue.nlu import NLU

PARAPHRASES = [
    ("yo where's the parcel i bought on friday", "track_order"),
    ("pls cancel the order i made, i don't want it", "cancel_order"),
    ("how much money is still on my giftcard", "gift_card_balance"),
    ("my password doesn't work and i can't get into my account", "reset_password"),
    ("the mug arrived smashed into pieces", "damaged_item"),
    ("can i talk with a real human being", "talk_to_human"),
    ("do you send orders to spain", "international_shipping"),
]
UNRELATED = [
    "asdkjh qwe zzxv",
    "what is the boiling point of mercury",
    "recommend a good horror movie",
    "who won the tennis match yesterday",
]


@pytest.mark.parametrize(("text", "intent"), PARAPHRASES)
def test_held_out_paraphrases_get_their_intent(
    trained_nlu: EmbeddedNLU, text: str, intent: str
) -> None:
    result = trained_nlu.parse_sync(text)
    assert not result.out_of_scope
    assert result.intent is not None
    assert result.intent.name == intent
    assert 0.0 <= result.intent.confidence <= 1.0


@pytest.mark.parametrize("text", UNRELATED)
def test_unrelated_text_is_out_of_scope(trained_nlu: EmbeddedNLU, text: str) -> None:
    result = trained_nlu.parse_sync(text)
    assert result.out_of_scope
    assert result.intent is None
    assert result.to_dict()["intent"]["name"] == "out_of_scope"


def test_ranking_is_sorted_and_at_most_ten(trained_nlu: EmbeddedNLU) -> None:
    result = trained_nlu.parse_sync("where is my refund")
    confidences = [i.confidence for i in result.ranking]
    assert len(result.ranking) == 10
    assert confidences == sorted(confidences, reverse=True)
    assert result.intent == result.ranking[0]
    assert 0.0 <= result.oos_score <= 1.0


def test_regex_entities_at_parse_time(trained_nlu: EmbeddedNLU) -> None:
    result = trained_nlu.parse_sync("cancel order 99812 please")
    assert [(e.entity, e.value, e.extractor) for e in result.entities] == [
        ("order_id", "99812", "regex")
    ]


async def test_async_parse_matches_sync_and_runs_concurrently(trained_nlu: EmbeddedNLU) -> None:
    nlu: NLU = trained_nlu
    texts = ["track my order", "how do i return shoes", "hello world of pancakes"]
    results = await asyncio.gather(*(nlu.parse(t) for t in texts))
    assert [r.text for r in results] == texts
    assert results[0] == trained_nlu.parse_sync(texts[0])


async def test_async_context_manager_closes_the_executor(encoder_dir: Path, data_dir: Path) -> None:
    nlu = await asyncio.to_thread(EmbeddedNLU.train, [data_dir / "train.yml"], encoder_dir)
    async with nlu:
        assert (await nlu.parse("where is my order")).intent is not None
    assert nlu._executor is None


def test_training_cache_is_reused(tmp_path: Path, encoder_dir: Path, data_dir: Path) -> None:
    first = EmbeddedNLU.train([data_dir / "train.yml"], encoder_dir, cache_dir=tmp_path)
    cached = list(tmp_path.glob("intents-*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = EmbeddedNLU.train([data_dir / "train.yml"], encoder_dir, cache_dir=tmp_path)
    assert cached[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.classifier.weights, second.classifier.weights)
    assert second.threshold == pytest.approx(first.threshold)


def test_threshold_override(encoder_dir: Path, data_dir: Path) -> None:
    nlu = EmbeddedNLU.train([data_dir / "train.yml"], encoder_dir, threshold=1.01)
    assert nlu.parse_sync("where is my order").out_of_scope


def test_classifier_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 16))
    x = np.concatenate([c + 0.1 * rng.normal(size=(6, 16)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = [name for name in ("a", "b", "c") for _ in range(6)]
    clf = train_classifier(x, labels)
    assert clf.temperature > 0
    clf.save(tmp_path / "m.npz")
    loaded = IntentClassifier.load(tmp_path / "m.npz")
    np.testing.assert_allclose(loaded.score(x).in_scope, clf.score(x).in_scope)
    assert loaded.intents == ["a", "b", "c"]
    np.testing.assert_allclose(np.linalg.norm(loaded.centroids, axis=1), 1.0, rtol=1e-5)
    assert [loaded.intents[i] for i in loaded.score(x).probs.argmax(1)] == labels


def test_training_needs_two_intents_with_two_examples() -> None:
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(NLUError, match="two intents"):
        train_classifier(x, ["a"] * 4)
    with pytest.raises(NLUError, match="'b' needs at least two"):
        train_classifier(x, ["a", "a", "a", "b"])
