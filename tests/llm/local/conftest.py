"""Session fixtures of the export tests: the tiny Phi-4-mini-shaped checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import Phi3ForCausalLM

from tests.llm.local.tiny_phi import build_phi3_checkpoint


@pytest.fixture(scope="session")
def phi3_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_phi3_checkpoint(tmp_path_factory.mktemp("phi4-mini-tiny"))


@pytest.fixture(scope="session")
def reference(phi3_checkpoint: Path) -> Phi3ForCausalLM:
    return Phi3ForCausalLM.from_pretrained(phi3_checkpoint, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def llm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llm-cache")


@pytest.fixture(scope="session")
def phi3_wide_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Width 1536 (head size 64), for onnxruntime's GroupQueryAttention kernel.

    The kernel needs a head size that is a multiple of 16 and a rotary half
    (head size x 0.75 / 2) that is a multiple of 8, as Phi-4-mini's 128 and 48
    are; head size 8 (width 192) fails both.
    """
    return build_phi3_checkpoint(tmp_path_factory.mktemp("phi4-mini-tiny-wide"), hidden=1536)


@pytest.fixture(scope="session")
def wide_reference(phi3_wide_checkpoint: Path) -> Phi3ForCausalLM:
    return Phi3ForCausalLM.from_pretrained(phi3_wide_checkpoint, dtype=torch.float32).eval()
