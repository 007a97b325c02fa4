"""``distill serve``: the student behind an OpenAI-compatible gateway, with the teacher as its safety net.

Modules: ``settings`` (the gateway's options, thresholds, files), ``batching`` (micro-batches of concurrent
requests into one ``generate`` call), ``student`` (in-process model or any OpenAI-compatible server), ``routing``
(modes, canary hashing, slices, fallback checks), ``gateway`` (one request end to end), ``openai_format`` (chat
completions and stream chunks), ``logwriter`` (durable rotated JSONL in the import format), ``metrics``
(Prometheus), ``app`` (FastAPI routes), ``control`` (state file and admin client), ``server`` (assembly, uvicorn).
"""
