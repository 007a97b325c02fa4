"""One module per command group; each defines ``register(subparsers, common)``.

``MODULE_OF`` says which module registers each command, so that ``distill CMD`` registers only CMD's module: the
other modules' imports and parsers cost ~0.1 s of every start (`distill studio` must draw within 1 s).
``tests/test_cli_routing.py`` checks the table against what each module's ``register`` adds.
"""

MODULE_OF = {
    "import": "importing", "batches": "importing", "undo-import": "importing", "stats": "stats",
    "studio": "studio", "demo": "studio", "review": "review", "slices": "slices", "dedupe": "dedupe",
    "split": "split", "filter": "filter", "rebalance": "rebalance", "oversample": "oversample",
    "versions": "versions", "export": "export", "teachers": "teacher", "generate": "teacher", "synth": "teacher",
    "batch": "teacher", "baseline": "baseline", "bar": "train", "train": "train", "runs": "train", "eval": "train",
    "round": "rounds", "checklist": "checklist", "backup": "backup", "restore": "backup", "monitor": "monitor",
    "serve": "serve",
}  # fmt: skip
