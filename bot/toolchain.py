"""What model export and quantization share: tool versions, CPU features, quiet logs."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path


def package_version(dist: str) -> str:
    """Return an installed distribution's version, or ``absent``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def cpu_quantization_arch() -> str:
    """Return ``avx512_vnni`` when the CPU flags have it, else ``avx2``."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "avx2"
    for line in text.splitlines():
        if line.startswith("flags"):
            return "avx512_vnni" if "avx512_vnni" in line.split() else "avx2"
    return "avx2"


def int8_options(arch: str) -> dict[str, bool]:
    """Extra ``AutoQuantizationConfig`` options for ``arch``.

    Without VNNI, ONNX Runtime's u8s8 kernels use VPMADDUBSW, whose 16-bit
    sums saturate; 7-bit weights (``reduce_range``) avoid it. Measured on an
    AVX2-only AMD EPYC: without it SmolLM2 int8 answers "capital of France?"
    with nonsense and MiniLM retrieval ranks articles wrongly. Optimum's
    ``avx512_vnni`` factory takes no ``reduce_range`` at all, so VNNI gets none.
    """
    return {"reduce_range": True} if arch == "avx2" else {}


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence exporter warnings and the quantizers' per-tensor root-logger lines.

    The tracer warns about constructs that are harmless for these models, and
    the ONNX Runtime quantizers log one root-logger line per tensor.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
