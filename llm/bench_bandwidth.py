"""Memory read bandwidth of this machine, the bound of token-by-token decode.

Decode of a large model reads every weight once per token, so
``bandwidth / bytes read per token`` bounds its tokens per second. The
bandwidth is measured as numpy sums over an array far larger than the
caches' share a core can use, with one thread and with several (each
summing its own slice; numpy releases the GIL in reductions).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from typing import Any

import numpy as np

_LOGGER = logging.getLogger(__name__)

METHOD = (
    "numpy float32 sum over a {size_mb} MiB array (touched first), {runs} runs per "
    "thread count, median; with N threads each sums a contiguous 1/N slice at once; "
    "GB/s = bytes read / wall time (1 GB = 1e9 bytes)"
)


def _timed_sum(array: np.ndarray, threads: int) -> float:
    """Sum ``array`` in ``threads`` slices at once and return the seconds taken."""
    slices = np.array_split(array, threads)
    workers = [threading.Thread(target=np.sum, args=(part,)) for part in slices]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def measure_bandwidth(
    size_mb: int = 1024, runs: int = 5, threads: tuple[int, ...] = (1, 2)
) -> dict[str, Any]:
    """Measure read bandwidth in GB/s for each thread count.

    Args:
        size_mb: the array size in MiB.
        runs: repetitions per thread count; the median is reported.
        threads: the thread counts to measure.

    Returns:
        ``{"gb_s": {"1": ..., "2": ...}, "runs_gb_s": {...}, "method": ...}``.
    """
    array = np.ones(size_mb * 1024 * 1024 // 4, dtype=np.float32)
    np.sum(array)  # Warm: pages mapped, caches flushed of anything else.
    result: dict[str, Any] = {"gb_s": {}, "runs_gb_s": {}}
    for count in threads:
        speeds = [array.nbytes / _timed_sum(array, count) / 1e9 for _ in range(runs)]
        result["runs_gb_s"][str(count)] = [round(s, 2) for s in speeds]
        result["gb_s"][str(count)] = round(statistics.median(speeds), 2)
        _LOGGER.info(
            "Read bandwidth with %d thread(s): %.1f GB/s.", count, statistics.median(speeds)
        )
    result["method"] = METHOD.format(size_mb=size_mb, runs=runs)
    return result
