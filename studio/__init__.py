"""Distill Studio, the Textual app. Never imports duckdb: every data access goes through curation."""
