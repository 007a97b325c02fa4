"""The run configuration: what the worker reads from ``run.json`` and what the workspace records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from curation.option_lists import ListOption
from curation.options import ChoiceOption, FlagOption, FloatOption, IntOption, OptionSet, TextOption

DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
SOFT_MODES = ("off", "candidates", "tokens")  # train.soft
CONSTRAIN_MODES = ("trie", "score")  # train.constrain


def parse_alpha(text: str) -> tuple[float, float | None]:
    """``0.5`` (constant) or ``0.8:0.2`` (linear from the first step to the last) as (start, end or None); a
    ``ValueError`` saying what is wrong otherwise."""
    bad = f"give a number in 0..1, or START:END for a linear schedule, not {text!r}"
    try:
        vals = [float(p) for p in str(text).split(":")]
    except ValueError:
        raise ValueError(bad) from None
    if len(vals) > 2 or any(not 0.0 <= v <= 1.0 for v in vals):
        raise ValueError(bad)
    return vals[0], (vals[1] if len(vals) == 2 else None)


def format_alpha(value: tuple[float, float | None]) -> str:
    """The text ``parse_alpha`` reads back."""
    start, end = value
    return f"{start:g}" if end is None else f"{start:g}:{end:g}"


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
        ChoiceOption(
            name="soft_labels",
            choices=SOFT_MODES,
            default="off",
            required=True,
            help="train on the teachers' probabilities, not only their answers: candidates = their distribution "
            "over the checkable field's values (from stored logprobs and other teachers' answers; any teacher), "
            "tokens = token-level top-k distillation (the teacher shares the student's tokenizer)",
        ),
        FloatOption(
            name="soft_temperature",
            flag="--temperature",
            default=1.0,
            minimum=0,
            exclusive_minimum=True,
            required=True,
            label="Soft-label temperature",
            help="soften the teachers' distribution: > 1 flattens it, < 1 sharpens it",
        ),
        TextOption(
            name="alpha",
            default=(0.5, None),
            required=True,
            metavar="A[:B]",
            read=parse_alpha,
            write=format_alpha,
            label="Soft-label alpha",
            help="weight of the soft term (1 - alpha on the hard label: the reference where there is one); A:B "
            "moves linearly from A to B over the run",
        ),
        IntOption(
            name="soft_max_candidates",
            flag="--soft-candidates",
            default=4,
            minimum=2,
            required=True,
            metavar="K",
            label="Candidates per row",
            help="candidate answers the student scores per row (the most probable; the hard target always)",
        ),
        TextOption(name="label_field", metavar="FIELD", help="the checkable field (default: the quality bar's)"),
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
        ChoiceOption(
            name="constrain_labels",
            choices=CONSTRAIN_MODES,
            metavar="HOW",
            label="Keep answers in the label set",
            help="keep the answers' label field inside the bar's label set (a label metric, else the references' "
            "values): trie = only label tokens while generating the value; score = an answer outside the set gets "
            "the label the student finds most likely",
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
    # Soft labels (train.soft); alpha moves linearly from soft_alpha to soft_alpha_end (None: fixed) over the run.
    soft_labels: str = TRAIN.default("soft_labels")
    soft_temperature: float = TRAIN.default("soft_temperature")
    soft_alpha: float = TRAIN.default("alpha")[0]
    soft_alpha_end: float | None = TRAIN.default("alpha")[1]
    soft_max_candidates: int = TRAIN.default("soft_max_candidates")
    label_field: str | None = None  # the checkable field; None = the quality bar's (recorded once resolved)
    labels: list[str] | None = None  # the label set the export used (recorded; None = the references' values)

    def check_soft(self) -> None:
        """Raise ``UserError`` (the options' own message) on soft-label settings that cannot train."""
        TRAIN["soft_labels"].parse(self.soft_labels)
        TRAIN["soft_temperature"].parse(self.soft_temperature)
        TRAIN["alpha"].parse(format_alpha((self.soft_alpha, self.soft_alpha_end)))
        TRAIN["soft_max_candidates"].parse(self.soft_max_candidates)

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
    if values.get("alpha") is not None:
        cfg.soft_alpha, cfg.soft_alpha_end = values["alpha"]
    return cfg, models


def eval_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed eval options -> keywords of ``evaluate_run``."""
    return {"limit": values.get("limit"), "seed": values["seed"], "max_new_tokens": values["max_new_tokens"],
            "batch_size": values["gen_batch_size"], "baseline": values["baseline"],
            "constrain": values.get("constrain_labels")}  # fmt: skip
