"""One onnxruntime session over a causal LM exported with past key values.

The decoder talks to the model only through :meth:`ModelSession.forward`: feed
some tokens on top of a KV cache, get their logits and the longer cache back.
The cache is plain numpy arrays, so dropping rejected speculative tokens is a
slice (:meth:`KVCache.truncate`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

_PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)")


@dataclass
class KVCache:
    arrays: list[np.ndarray]  # in the session's past input order

    @property
    def length(self) -> int:
        return int(self.arrays[0].shape[2]) if self.arrays else 0

    def truncate(self, length: int) -> "KVCache":
        if length >= self.length:
            return self
        return KVCache([np.ascontiguousarray(a[:, :, :length, :]) for a in self.arrays])


def has_nvidia_gpu() -> bool:
    """onnxruntime-gpu lists CUDA as available even on machines without a GPU."""
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def choose_providers(use_cuda: bool) -> list[str]:
    available = ort.get_available_providers()
    if use_cuda and "CUDAExecutionProvider" in available and has_nvidia_gpu():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(intra_op_threads: int = 0) -> ort.SessionOptions:
    """Every graph optimisation; *intra_op_threads* threads (0: onnxruntime chooses)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    return options


class ModelSession:
    def __init__(self, model_path: Path, use_cuda: bool = False, intra_op_threads: int = 0):
        options = session_options(intra_op_threads)
        self.session = ort.InferenceSession(str(model_path), options, providers=choose_providers(use_cuda))
        self.providers = self.session.get_providers()
        inputs = self.session.get_inputs()
        self.past_names = [i.name for i in inputs if _PAST.match(i.name)]
        self.present_names = [n.replace("past_key_values", "present") for n in self.past_names]
        first = next(i for i in inputs if _PAST.match(i.name))
        self.kv_heads, self.head_dim = int(first.shape[1]), int(first.shape[3])
        self.dtype = np.float16 if "float16" in first.type else np.float32
        self.output_names = ["logits", *self.present_names]
        self.keeps_logits = any(i.name == "logits_to_keep" for i in inputs)
        # Graphs with fused attention derive positions from the attention mask.
        self.takes_positions = any(i.name == "position_ids" for i in inputs)

    def empty_cache(self) -> KVCache:
        shape = (1, self.kv_heads, 0, self.head_dim)
        return KVCache([np.zeros(shape, dtype=self.dtype) for _ in self.past_names])

    def forward(self, token_ids: list[int], cache: KVCache, keep: int | None = None) -> tuple[np.ndarray, KVCache]:
        """Logits for the last *keep* fed tokens (all when None) and the extended cache.

        Models exported by Docket compute the LM head only for those rows
        (``logits_to_keep``); for others the rows are sliced here.
        """
        past = cache.length
        n = len(token_ids)
        feed = {
            "input_ids": np.asarray([token_ids], dtype=np.int64),
            "attention_mask": np.ones((1, past + n), dtype=np.int64),
        }
        if self.takes_positions:
            feed["position_ids"] = np.arange(past, past + n, dtype=np.int64)[None, :]
        keep = n if keep is None else min(keep, n)
        if self.keeps_logits:
            feed["logits_to_keep"] = np.asarray([keep], dtype=np.int64)
        feed.update(zip(self.past_names, cache.arrays))
        logits, *present = self.session.run(self.output_names, feed)
        return logits[0][-keep:], KVCache(present)
