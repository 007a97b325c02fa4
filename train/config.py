"""The run configuration: what the worker reads from ``run.json`` and what the workspace records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class RunConfig:
    """Hyperparameters and paths of one training run. Defaults suit SmolLM2-135M on a 2-core CPU."""

    base_model: str = "smollm2"
    data_path: str = ""
    out_dir: str = ""
    max_steps: int = 60
    epochs: float = 3.0  # the run stops at whichever of max_steps / epochs comes first
    batch_size: int = 8
    learning_rate: float = 2e-3
    warmup_steps: int = 5
    weight_decay: float = 0.0
    max_length: int = 384  # tokens per example; longer ones are cut from the left of the prompt
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    precision: str = "auto"  # auto | bf16 | fp32
    device: str = "auto"  # auto | cpu | cuda
    eval_every: int = 10
    eval_max_examples: int = 64
    patience: int = 3  # evaluations without a better held-out loss before stopping
    save_every: int = 20
    keep_checkpoints: int = 2
    group_by_length: bool = True
    seed: int = 0
    merge: bool = False
    threads: int = 0  # torch threads; 0 = torch's default

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: Path) -> None:
        """Write the config as JSON (the worker's ``--config``)."""
        path.write_text(self.to_json())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a dict, ignoring unknown keys (configs written by newer code still load)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
