"""Monitor tests: hand-written gateway logs (logfix.py) and small served workspaces (wsfix.py)."""
