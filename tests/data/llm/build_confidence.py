"""Build ``confidence.yml``, the labelled calibration set, from its two sources.

Not a test: run it by hand (``python tests/data/llm/build_confidence.py``).

* ``confidence_generated.yml``: SmolLM2-135M's own answers
  (``generate_confidence.py``), labelled by hand.
* ``confidence_written.yml``: answers written to cover what the small model
  rarely produces (grounded, correct, cited answers; plausible wrong facts;
  refusals), each scored by SmolLM2-135M with teacher forcing: the
  log-probability the model gives each answer token after the same prompt.
  A fluent answer copied from a passage gets high log-probs, an invented
  fact low ones, exactly as when the model writes them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from generate_confidence import MemoryStore, load_model  # noqa: E402

from bot.nlu.encoder import Encoder  # noqa: E402
from llm.prompt import build_prompt  # noqa: E402
from llm.retrieval import KnowledgeBase  # noqa: E402
from llm.settings import LLMSettings  # noqa: E402


@torch.no_grad()
def forced_logprobs(
    tokenizer: Any, model: Any, messages: list[dict[str, str]], answer: str
) -> list[float]:
    """Return the model's log-probability of each token of ``answer`` after ``messages``."""
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt"
    )
    answer_ids = tokenizer(answer, add_special_tokens=False, return_tensors="pt").input_ids
    ids = torch.cat([prompt, answer_ids], dim=1)
    logits = model(ids).logits[0, prompt.shape[1] - 1 : -1].float()
    lps = torch.log_softmax(logits, dim=-1).gather(1, answer_ids[0].unsqueeze(1))[:, 0]
    return [round(float(lp), 3) for lp in lps]


def _cite(answer: str, source: str, passage_ids: list[str]) -> str:
    for number, pid in enumerate(passage_ids, start=1):
        if pid.startswith(f"{source}#"):
            return answer.replace("[c]", f"[{number}]")
    return answer.replace(" [c]", "")


async def main() -> None:
    settings = LLMSettings()
    kb = KnowledgeBase(MemoryStore(), Encoder(ROOT / "var/models/minilm-int8"), min_score=-1.0)
    await kb.sync(ROOT / "flows/kb")
    await kb.load()
    tokenizer, model = load_model()
    examples = []
    for item in yaml.safe_load((HERE / "confidence_generated.yml").read_text()):
        examples.append(
            {
                "origin": "generated",
                **{
                    k: item[k]
                    for k in (
                        "question",
                        "top_score",
                        "passages",
                        "answer",
                        "logprobs",
                        "label",
                        "note",
                    )
                },
            }
        )
    for item in yaml.safe_load((HERE / "confidence_written.yml").read_text()):
        passages = await kb.search(item["question"], settings.retrieval.top_k)
        ids = [p.id for p in passages]
        answer = _cite(item["answer"], item["source"], ids)
        prompt = build_prompt(
            item["question"],
            passages,
            [],
            instructions=settings.system_prompt,
            history_limit=0,
            budget_tokens=settings.prompt_budget_tokens,
            count_tokens=lambda t: len(tokenizer.encode(t)),
        )
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        examples.append(
            {
                "origin": "written",
                "question": item["question"],
                "top_score": round(passages[0].score, 3),
                "passages": ids,
                "answer": answer,
                "logprobs": forced_logprobs(tokenizer, model, messages, answer),
                "label": item["label"],
            }
        )
        print(len(examples), answer[:80], flush=True)
    header = (
        "# The labelled calibration set of llm/confidence.py; built by build_confidence.py.\n"
        "# label good = fine to send as the final answer without escalation.\n"
    )
    body = yaml.safe_dump(examples, sort_keys=False, width=100, default_flow_style=None)
    (HERE / "confidence.yml").write_text(header + body)


if __name__ == "__main__":
    asyncio.run(main())
