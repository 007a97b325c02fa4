"""The teacher: configured endpoints, generation with cache/retries/budget/ledger, synthetic inputs, Batch API."""
