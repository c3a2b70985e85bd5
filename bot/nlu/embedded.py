"""The embedded NLU: ONNX sentence embeddings, a calibrated classifier and extractors.

Parsing takes about two milliseconds of CPU, so :meth:`EmbeddedNLU.parse` runs
it on a dedicated single-thread executor and the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from bot.dialogue.nlu import Intent, ParseResult
from bot.errors import NLUError
from bot.nlu.classifier import FORMAT_VERSION, IntentClassifier, train_classifier
from bot.nlu.data import load_nlu, require_examples
from bot.nlu.encoder import Encoder
from bot.nlu.extractors import EntityExtractor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.nlu.data import NLUData

_LOGGER = logging.getLogger(__name__)

RANKING_SIZE = 10


def training_key(nlu_paths: Sequence[Path], encoder: Encoder) -> str:
    """Return the cache key of a model: the NLU files' contents plus the encoder id."""
    digest = hashlib.sha256(f"v{FORMAT_VERSION}:{encoder.id}".encode())
    for path in nlu_paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:24]


class EmbeddedNLU:
    """The built-in NLU; implements the :class:`bot.dialogue.nlu.NLU` protocol."""

    def __init__(
        self,
        encoder: Encoder,
        classifier: IntentClassifier,
        extractor: EntityExtractor,
        *,
        threshold: float | None = None,
    ) -> None:
        """Assemble a trained NLU; most callers want :meth:`train`.

        Args:
            encoder: The ONNX sentence encoder.
            classifier: The trained intent classifier.
            extractor: The regex and lookup entity extractor.
            threshold: In-scope score below which a message is out of scope;
                the classifier's default when ``None``.
        """
        self.encoder = encoder
        self.classifier = classifier
        self.extractor = extractor
        self.threshold = classifier.threshold if threshold is None else threshold
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def train(
        cls,
        nlu_paths: Sequence[Path],
        encoder_dir: Path,
        *,
        cache_dir: Path | None = None,
        intra_op_threads: int = 1,
        threshold: float | None = None,
    ) -> EmbeddedNLU:
        """Train from Rasa NLU files, reusing a cached model when one matches.

        Args:
            nlu_paths: The ``nlu.yml`` files.
            encoder_dir: A folder made by :func:`bot.nlu.encoder.prepare_encoder`.
            cache_dir: Where trained classifiers are cached; no caching when ``None``.
            intra_op_threads: ONNX Runtime threads per inference.
            threshold: Overrides the trained out-of-scope threshold.

        Raises:
            FlowError: An NLU file is malformed.
            NLUError: The encoder is missing or the data cannot train a model.
        """
        data = load_nlu(nlu_paths)
        if not data.examples:
            raise NLUError("the NLU files hold no intent examples")
        require_examples(data)
        encoder = Encoder(encoder_dir, intra_op_threads=intra_op_threads)
        cached = None
        if cache_dir is not None:
            cached = Path(cache_dir) / f"intents-{training_key(nlu_paths, encoder)}.npz"
        classifier = _load_or_train(data, encoder, cached)
        extractor = EntityExtractor(data.regexes, data.lookups, data.synonyms)
        return cls(encoder, classifier, extractor, threshold=threshold)

    @property
    def intents(self) -> list[str]:
        """Return the intents the NLU knows."""
        return list(self.classifier.intents)

    def parse_sync(self, text: str) -> ParseResult:
        """Parse one message on the calling thread."""
        embedding = self.encoder.encode_one(text)[None, :]
        scores = self.classifier.score(embedding)
        probs = scores.probs[0]
        order = probs.argsort()[::-1][:RANKING_SIZE]
        ranking = tuple(Intent(self.classifier.intents[i], float(probs[i])) for i in order)
        in_scope = float(scores.in_scope[0])
        out_of_scope = in_scope < self.threshold
        return ParseResult(
            text=text,
            intent=None if out_of_scope else ranking[0],
            ranking=ranking,
            entities=self.extractor.extract(text),
            out_of_scope=out_of_scope,
            oos_score=1.0 - in_scope,
        )

    async def parse(self, text: str) -> ParseResult:
        """Parse one message off the event loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.parse_sync, text)

    def close(self) -> None:
        """Stop the inference thread; :meth:`parse` starts a new one if called again."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def __aenter__(self) -> EmbeddedNLU:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)


def _load_or_train(data: NLUData, encoder: Encoder, cached: Path | None) -> IntentClassifier:
    """Return the cached classifier at ``cached`` or train (and cache) a new one."""
    if cached is not None and cached.is_file():
        try:
            classifier = IntentClassifier.load(cached)
        except NLUError as exc:
            _LOGGER.warning("Ignoring the cached classifier: %s.", exc)
        else:
            _LOGGER.info("Loaded the cached classifier %s.", cached)
            return classifier
    texts = [e.text for e in data.examples]
    _LOGGER.info("Encoding %d training examples.", len(texts))
    embeddings = encoder.encode(texts)
    classifier = train_classifier(embeddings, [e.intent for e in data.examples])
    if cached is not None:
        classifier.save(cached)
    return classifier
