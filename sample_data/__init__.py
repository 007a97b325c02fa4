"""The bundled sample: support-ticket triage logs (``production_logs.jsonl.gz``, made by ``generate.py``) and the
offline teacher that answers like the sample's teacher (``offline_teacher``). See README.md here."""

from pathlib import Path

LOGS = Path(__file__).resolve().parent / "production_logs.jsonl.gz"
