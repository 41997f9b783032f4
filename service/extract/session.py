"""One onnxruntime session over a causal LM exported with past key values.

The decoder talks to the model only through :meth:`ModelSession.forward`: feed
some tokens on top of a KV cache, get their logits and the longer cache back.
The cache is plain numpy arrays, so dropping rejected speculative tokens is a
slice (:meth:`KVCache.truncate`).

Graphs with fused attention (GroupQueryAttention) write the new keys and
values into the cache in place when the past input and the present output
are the same buffer: the cache is then a fixed-size buffer per layer with a
length, a call copies nothing, and truncating is forgetting the tail. A
graph that appends by concatenation gets a new, longer array every call.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

_PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)")


@dataclass
class KVCache:
    arrays: list[np.ndarray]  # in the session's past input order
    used: int | None = None  # tokens held, for buffers written in place (None: the arrays' own length)
    binding: Any = field(default=None, repr=False)  # buffers written in place: their IOBinding, kept call to call

    @property
    def length(self) -> int:
        if self.used is not None:
            return self.used
        return int(self.arrays[0].shape[2]) if self.arrays else 0

    @property
    def capacity(self) -> int:
        return int(self.arrays[0].shape[2]) if self.arrays else 0

    def truncate(self, length: int) -> "KVCache":
        if length >= self.length:
            return self
        if self.used is not None:  # the next call overwrites the tail
            return KVCache(self.arrays, length, self.binding)
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
        logits = self.session.get_outputs()[0]
        self.vocab_size = int(logits.shape[-1])
        self.logits_dtype = np.float16 if "float16" in logits.type else np.float32
        self.keeps_logits = any(i.name == "logits_to_keep" for i in inputs)
        # Graphs with fused attention derive positions from the attention mask,
        # and write the cache in place when past and present share a buffer.
        self.takes_positions = any(i.name == "position_ids" for i in inputs)
        self.in_place = not self.takes_positions and self.providers[0] == "CPUExecutionProvider"

    def empty_cache(self, capacity: int = 1024) -> KVCache:
        """Room for *capacity* tokens when the graph writes in place (it grows if a document needs more)."""
        if self.in_place:
            shape = (1, self.kv_heads, capacity, self.head_dim)
            return KVCache([np.zeros(shape, dtype=self.dtype) for _ in self.past_names], used=0)
        shape = (1, self.kv_heads, 0, self.head_dim)
        return KVCache([np.zeros(shape, dtype=self.dtype) for _ in self.past_names])

    def forward(self, token_ids: list[int], cache: KVCache, keep: int | None = None) -> tuple[np.ndarray, KVCache]:
        """Logits for the last *keep* fed tokens (all when None) and the extended cache.

        Models exported by Docket compute the LM head only for those rows
        (``logits_to_keep``); for others the rows are sliced here. A cache
        written in place is spent by the call: use the one it returns.
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
        if cache.used is not None:
            return self._forward_in_place(feed, cache, past + n, keep)
        feed.update(zip(self.past_names, cache.arrays))
        logits, *present = self.session.run(self.output_names, feed)
        return logits[0][-keep:], KVCache(present)

    def _forward_in_place(self, feed: dict, cache: KVCache, total: int, keep: int) -> tuple[np.ndarray, KVCache]:
        if total > cache.capacity:
            cache = self.copied_cache(cache, max(total, 2 * cache.capacity))
        binding = cache.binding or self._bind(cache.arrays)
        for name, value in feed.items():
            binding.bind_cpu_input(name, value)
        rows = keep if self.keeps_logits else len(feed["input_ids"][0])
        logits = np.empty((1, rows, self.vocab_size), dtype=self.logits_dtype)
        binding.bind_output("logits", "cpu", 0, self.logits_dtype, logits.shape, logits.ctypes.data)
        self.session.run_with_iobinding(binding)
        return logits[0][-keep:], KVCache(cache.arrays, total, binding)

    def _bind(self, arrays: list[np.ndarray]):
        """An IOBinding with every layer's past and present on *arrays*, kept while they are the
        cache: binding 60 buffers costs about 0.45 ms, a twentieth of a decode call."""
        binding = self.session.io_binding()
        for past_name, present_name, array in zip(self.past_names, self.present_names, arrays):
            binding.bind_input(past_name, "cpu", 0, self.dtype, array.shape, array.ctypes.data)
            binding.bind_output(present_name, "cpu", 0, self.dtype, array.shape, array.ctypes.data)
        return binding

    def copied_cache(self, cache: KVCache, capacity: int) -> KVCache:
        """*cache*'s tokens in a buffer of its own with room for *capacity* (a graph that appends never
        writes into a cache it was given, so there the cache itself is returned)."""
        if cache.used is None:
            return cache
        copied = self.empty_cache(max(capacity, cache.length))
        for old, new in zip(cache.arrays, copied.arrays):
            new[:, :, : cache.length] = old[:, :, : cache.length]
        return KVCache(copied.arrays, cache.length)
