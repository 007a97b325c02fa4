"""The run configuration: what the worker reads from ``run.json`` and what the workspace records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from curation.option_lists import ListOption
from curation.options import ChoiceOption, FlagOption, FloatOption, IntOption, OptionSet

DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]

# What a user sets for a run (CLI flags of `distill train`, the training screen's fields); RunConfig takes its
# defaults from here. Defaults suit SmolLM2-135M on a 2-core CPU.
TRAIN = OptionSet(
    "train",
    (
        ListOption(
            name="models",
            flag="--model",
            metavar="MODEL",
            default=("smollm2",),
            required=True,
            label="Base model",
            help="smollm2, a folder, a .gguf or a hub id; several = a run group, side by side",
        ),
        IntOption(name="max_steps", flag="--steps", default=60, minimum=1, required=True, help="max optimizer steps"),
        FloatOption(
            name="epochs",
            default=3.0,
            minimum=0,
            exclusive_minimum=True,
            required=True,
            help="max epochs (the run stops at whichever of steps / epochs comes first)",
        ),
        IntOption(name="batch_size", default=8, minimum=1, required=True, help="examples per optimizer step"),
        FloatOption(
            name="learning_rate",
            flag="--lr",
            default=2e-3,
            minimum=0,
            exclusive_minimum=True,
            required=True,
            help="learning rate",
        ),
        IntOption(
            name="lora_r", default=8, minimum=1, required=True, label="LoRA rank", help="LoRA rank (alpha = 2 x rank)"
        ),
        IntOption(
            name="max_length",
            default=384,
            minimum=1,
            required=True,
            help="tokens per example; longer ones are cut from the left of the prompt",
        ),
        IntOption(
            name="eval_every", default=10, minimum=1, required=True, help="held-out loss every N steps (early stopping)"
        ),
        IntOption(
            name="patience",
            default=3,
            minimum=1,
            required=True,
            help="evaluations without a better held-out loss before stopping",
        ),
        ChoiceOption(
            name="precision",
            choices=("auto", "bf16", "fp32"),
            default="auto",
            required=True,
            help="auto: bf16 on a GPU, fp32 on a CPU",
        ),
        FlagOption(name="merge", help="also save the adapter merged into the base model"),
    ),
)


# How a run is evaluated (`distill eval RUN`, `distill train --eval`); the defaults of ``evaluate_split`` too.
EVAL = OptionSet(
    "eval",
    (
        IntOption(
            name="limit",
            minimum=1,
            help="evaluate at most N rows per set: a random sample stratified by slice and answer label",
        ),
        IntOption(name="seed", default=0, required=True, help="seed of the --limit sample"),
        IntOption(name="max_new_tokens", default=64, minimum=1, required=True, help="tokens generated per answer"),
        IntOption(
            name="gen_batch_size", default=16, minimum=1, required=True, help="generation batch size (length-sorted)"
        ),
        FlagOption(
            name="baseline",
            default=True,
            flag="--no-baseline",
            help="also evaluate the untuned base model (--no-baseline skips it)",
        ),
    ),
)


@dataclass
class RunConfig:
    """Hyperparameters and paths of one training run. Defaults suit SmolLM2-135M on a 2-core CPU."""

    base_model: str = TRAIN.default("models")[0]
    data_path: str = ""
    out_dir: str = ""
    max_steps: int = TRAIN.default("max_steps")
    epochs: float = TRAIN.default("epochs")  # the run stops at whichever of max_steps / epochs comes first
    batch_size: int = TRAIN.default("batch_size")
    learning_rate: float = TRAIN.default("learning_rate")
    warmup_steps: int = 5
    weight_decay: float = 0.0
    max_length: int = TRAIN.default("max_length")  # longer examples are cut from the left of the prompt
    lora_r: int = TRAIN.default("lora_r")
    lora_alpha: int = 2 * TRAIN.default("lora_r")
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    precision: str = TRAIN.default("precision")
    device: str = "auto"  # auto | cpu | cuda
    eval_every: int = TRAIN.default("eval_every")
    eval_max_examples: int = 64
    patience: int = TRAIN.default("patience")  # evaluations without a better held-out loss before stopping
    save_every: int = 20
    keep_checkpoints: int = 2
    group_by_length: bool = True
    seed: int = 0
    merge: bool = TRAIN.default("merge")
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


def config_from_options(values: dict[str, Any]) -> tuple[RunConfig, list[str]]:
    """Parsed train options -> the run config (first model as its base) and every base model (a group if several)."""
    models = list(values["models"])
    known = {f.name for f in fields(RunConfig)}
    cfg = RunConfig(**{k: v for k, v in values.items() if k in known}, base_model=models[0],
                    lora_alpha=2 * values["lora_r"])  # fmt: skip
    return cfg, models


def eval_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed eval options -> keywords of ``evaluate_run``."""
    return {"limit": values.get("limit"), "seed": values["seed"], "max_new_tokens": values["max_new_tokens"],
            "batch_size": values["gen_batch_size"], "baseline": values["baseline"]}  # fmt: skip
