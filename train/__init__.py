"""Training and evaluation backend: LoRA students trained in a subprocess, judged against the teacher per slice.

No Textual here (a test enforces it). The training subprocess (``python -m train.worker``) never opens the workspace;
``train.launcher`` runs it and records its JSON lines through ``train.store``.
"""
