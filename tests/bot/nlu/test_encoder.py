from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bot.errors import NLUError
from bot.nlu.encoder import (
    MANIFEST_FILE,
    MODEL_FILE,
    Encoder,
    cpu_quantization_arch,
    is_prepared,
    prepare_encoder,
)


def test_prepare_is_idempotent(encoder_dir: Path) -> None:
    model = encoder_dir / MODEL_FILE
    before = (model.stat().st_mtime_ns, (encoder_dir / MANIFEST_FILE).read_text())
    assert prepare_encoder(encoder_dir) == encoder_dir
    after = (model.stat().st_mtime_ns, (encoder_dir / MANIFEST_FILE).read_text())
    assert after == before
    assert is_prepared(encoder_dir)


def test_manifest_records_source_hash_and_versions(encoder_dir: Path) -> None:
    manifest = json.loads((encoder_dir / MANIFEST_FILE).read_text())
    assert len(manifest["source_sha256"]) == 64
    assert manifest["quantization"] == cpu_quantization_arch()
    assert manifest["quantization"] in {"avx512_vnni", "avx2"}
    assert manifest["per_channel"] is True
    assert {"optimum", "onnxruntime"} <= manifest["versions"].keys()


def test_stale_manifest_is_not_prepared(tmp_path: Path, encoder_dir: Path) -> None:
    (tmp_path / MODEL_FILE).write_bytes((encoder_dir / MODEL_FILE).read_bytes())
    manifest = json.loads((encoder_dir / MANIFEST_FILE).read_text())
    manifest["source_sha256"] = "0" * 64
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert not is_prepared(tmp_path)


def test_missing_encoder_is_an_nlu_error(tmp_path: Path) -> None:
    with pytest.raises(NLUError, match="helpline nlu prepare"):
        Encoder(tmp_path)


def test_embeddings_are_normalised_and_meaningful(encoder_dir: Path) -> None:
    encoder = Encoder(encoder_dir)
    vectors = encoder.encode(
        ["where is my order", "my package has not arrived yet", "the capital of france is paris"],
        batch_size=2,
    )
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert sims[1, 0] > sims[1, 2] + 0.2


def test_batch_and_single_encoding_agree(encoder_dir: Path) -> None:
    encoder = Encoder(encoder_dir)
    texts = ["hi", "i would like to return the blue jacket i bought last week"]
    batch = encoder.encode(texts)
    single = np.stack([encoder.encode_one(t) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    batched = encoder.encode(texts, batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_long_text_is_truncated(encoder_dir: Path) -> None:
    vector = Encoder(encoder_dir).encode_one("refund " * 1000)
    assert np.isfinite(vector).all()


def test_serving_never_imports_torch_or_transformers(encoder_dir: Path, data_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from bot.nlu.embedded import EmbeddedNLU
        nlu = EmbeddedNLU.train([Path({str(data_dir / "train.yml")!r})], Path({str(encoder_dir)!r}))
        nlu.parse_sync("where is my order")
        bad = sorted(m for m in ("torch", "transformers", "optimum") if m in sys.modules)
        print(",".join(bad))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=240
    )
    assert done.stdout.strip() == ""
