"""Writing a Rasa project (``config.yml`` and ``data/nlu.yml``) from a bot's NLU data.

The data is read with Helpline's own loader first, so a broken file is
reported as ``file:line`` before Rasa ever sees it, and written back in
Rasa's YAML format. The model's cache key hashes what Rasa trains on: the
pipeline, the data and the Rasa version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bot.nlu.data import Example, load_nlu

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.nlu.data import NLUData

#: The Rasa version the sidecar venv pins (scripts/setup-rasa-venv.sh).
RASA_VERSION = "3.6.21"

#: The documented pipeline. Rasa's own recommended English pipeline without
#: pretrained word vectors (none can be downloaded here): word and character
#: n-gram bag-of-words features feed DIET, which classifies intents and tags
#: entities; regexes and lookup tables become features and, through
#: RegexEntityExtractor, entities; EntitySynonymMapper maps synonyms. There is
#: no FallbackClassifier: Helpline applies its own threshold to DIET's top
#: confidence (``nlu.rasa.threshold``), the same way for every backend.
PIPELINE_TEMPLATE = """\
# Written by Helpline (bot/nlu/rasa/project.py); do not edit, it is regenerated.
recipe: default.v1
language: en
assistant_id: helpline
pipeline:
  # Split on whitespace; intent names like check_order are not split.
  - name: WhitespaceTokenizer
  # Regex and lookup-table patterns as features for DIET.
  - name: RegexFeaturizer
  # Word shape, case, prefix and suffix features for entity tagging.
  - name: LexicalSyntacticFeaturizer
  # Bag of words.
  - name: CountVectorsFeaturizer
  # Character n-grams (1-4) within word boundaries: robust to typos.
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  # Dual Intent and Entity Transformer: intents and entities in one model.
  - name: DIETClassifier
    epochs: {epochs}
    constrain_similarities: true
    random_seed: 42
  # Regex and lookup entities, exactly as the embedded NLU finds them.
  - name: RegexEntityExtractor
    use_lookup_tables: true
    use_regexes: true
    use_word_boundaries: true
  # Map annotated and listed synonyms to their canonical value.
  - name: EntitySynonymMapper
policies: []
"""

DEFAULT_EPOCHS = 100


def pipeline_config(epochs: int = DEFAULT_EPOCHS) -> str:
    """Return the ``config.yml`` text with DIET trained for ``epochs``."""
    return PIPELINE_TEMPLATE.format(epochs=int(epochs))


def _annotate(example: Example) -> str:
    """Return the example text with its entities written back inline."""
    text, parts, pos = example.text, [], 0
    for ent in sorted(example.entities, key=lambda e: e.start):
        if ent.start < pos or ent.end <= ent.start:
            continue
        span = text[ent.start : ent.end]
        parts.append(text[pos : ent.start])
        if ent.value == span:
            parts.append(f"[{span}]({ent.entity})")
        else:
            label = json.dumps({"entity": ent.entity, "value": ent.value})
            parts.append(f"[{span}]{label}")
        pos = ent.end
    parts.append(text[pos:])
    return "".join(parts)


def _block(lines: Sequence[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def rasa_nlu_document(data: NLUData) -> dict[str, object]:
    """Return the Rasa ``data/nlu.yml`` document holding ``data``."""
    items: list[dict[str, str]] = []
    by_intent: dict[str, list[str]] = {}
    for example in data.examples:
        by_intent.setdefault(example.intent, []).append(_annotate(example))
    items += [{"intent": name, "examples": _block(texts)} for name, texts in by_intent.items()]
    items += [{"regex": name, "examples": _block(p)} for name, p in data.regexes.items()]
    items += [{"lookup": name, "examples": _block(v)} for name, v in data.lookups.items()]
    canonical: dict[str, list[str]] = {}
    for variant, value in data.synonyms.items():
        if variant != value.lower():
            canonical.setdefault(value, []).append(variant)
    items += [{"synonym": name, "examples": _block(v)} for name, v in canonical.items()]
    return {"version": "3.1", "nlu": items}


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, as Rasa's own files do."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_presenter)


def write_project(
    nlu_paths: Sequence[Path],
    folder: Path,
    *,
    epochs: int = DEFAULT_EPOCHS,
    config_text: str | None = None,
) -> str:
    """Write ``config.yml`` and ``data/nlu.yml`` into ``folder``; return the cache key.

    ``config_text`` replaces the documented pipeline (tests, experiments).

    Raises:
        FlowError: An NLU file is malformed (``file:line``).
        NLUError: Nothing to train on.
    """
    from bot.errors import NLUError

    data = load_nlu(nlu_paths)
    if not data.examples:
        raise NLUError("the NLU files hold no intent examples")
    if len(data.intents) < 2:
        raise NLUError("Rasa needs at least two intents to train on")
    config = config_text if config_text is not None else pipeline_config(epochs)
    nlu_text = yaml.dump(
        rasa_nlu_document(data), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True
    )
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "config.yml").write_text(config, encoding="utf-8")
    (folder / "data" / "nlu.yml").write_text(nlu_text, encoding="utf-8")
    digest = hashlib.sha256(f"rasa=={RASA_VERSION}\n".encode())
    digest.update(config.encode())
    digest.update(nlu_text.encode())
    return digest.hexdigest()[:20]
