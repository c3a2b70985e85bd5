"""Smoke test of ``helpline bench llm``: the JSON path on a tiny random model.

No timing is asserted (the bench is not a test); only the report's shape, the
per-engine children and the unavailable-row path are checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm.bench_bandwidth import measure_bandwidth
from llm.bench_measure import Workload, measure
from llm.bench_phi import FULL_LAYERS, extrapolate
from tests.llm.local.tiny_llm import build_tiny_model

ROOT = Path(__file__).parents[2]
ROW_KEYS = {
    "available",
    "ttft_ms",
    "ttft_short_ms",
    "prefill_tok_s",
    "decode_tok_s",
    "decode_ms_per_token",
    "peak_rss_mb",
    "vs_baseline",
    "bits_per_weight",
}


@pytest.mark.timeout(240)
def test_bench_llm_json_on_a_tiny_model(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny") / "torch"
    cmd = [sys.executable, "-m", "bot", "bench", "llm", "--json", "--gguf", str(model)]
    cmd += ["--engines", "pytorch_fp32,ort_fp32,llama_cpp", "--prompt-tokens", "12"]
    cmd += ["--short-prompt-tokens", "6", "--new-tokens", "3", "--phi-layers", ""]
    cmd += ["--bandwidth-mb", "8", "--work-dir", str(tmp_path / "work")]
    cmd += ["--models", str(tmp_path / "models"), "--timeout", "200"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=230, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)

    assert report["workload"]["prompt_tokens"] == 12
    assert report["workload"]["short_prompt_tokens"] == 6
    engines = report["engines"]
    for name in ("pytorch_fp32", "ort_fp32"):
        assert engines[name]["available"], engines[name]
        assert ROW_KEYS <= engines[name].keys()
        assert engines[name]["new_tokens"] == 3
    assert engines["pytorch_fp32"]["vs_baseline"]["decode_x"] == 1.0
    assert "decode_x" in engines["ort_fp32"]["vs_baseline"]
    # A GGUF-only peer on a checkpoint folder (or without its venv) is a row with a reason.
    assert engines["llama_cpp"]["available"] is False
    assert engines["llama_cpp"]["reason"]
    assert set(report["targets"]["ort_fp32"]) >= {"ttft_short_le_300ms", "decode_ge_4x_pytorch"}
    assert set(report["bandwidth"]["gb_s"]) == {"1", "2"}
    assert "phi4_mini_shaped" not in report


def test_measure_counts_decode_steps() -> None:
    calls = {"prefill": 0, "decode": 0}

    def prefill(ids: list[int]) -> int:
        calls["prefill"] += 1
        return len(ids)

    def decode(token: int) -> int:
        calls["decode"] += 1
        return token + 1

    work = Workload(list(range(10)), list(range(4)), 5, 1)
    result = measure(prefill, decode, lambda: None, work)
    # Warm-up (1 + 3 decodes), 3 short TTFT runs, then 1 + 4 decodes.
    assert calls == {"prefill": 5, "decode": 7}
    assert result["prompt_tokens"] == 10
    assert result["decode_tok_s"] > 0


def test_extrapolation_is_linear_in_depth() -> None:
    def depth(layers: int) -> dict[str, object]:
        weights = {"total": 1000 + 100 * layers, "lm_head": 400}
        return {
            "layers": layers,
            "decode_ms_per_token": 3.0 + 2.0 * layers,
            "peak_rss_mb": 50.0 + 10 * layers,
            "weights": weights,
        }

    result = extrapolate([depth(2), depth(4)], bandwidth_gb_s=10.0, kv_tokens=640)
    assert result["decode_ms_per_token"] == {
        "per_layer": 2.0,
        "fixed": 3.0,
        "at_32": 3.0 + 2.0 * FULL_LAYERS,
    }
    assert result["decode_tok_s_32_layers"] == round(1000 / 67.0, 2)
    read = FULL_LAYERS * 100 + 400
    assert result["bandwidth_bound_tok_s"] == round(10e9 / read, 2)
    assert "method" in result


def test_bandwidth_reports_each_thread_count() -> None:
    result = measure_bandwidth(size_mb=4, runs=2, threads=(1, 2))
    assert set(result["gb_s"]) == {"1", "2"}
    assert all(value > 0 for value in result["gb_s"].values())
