"""Helpers for subcommand handlers."""

from __future__ import annotations

import argparse

from curation.workspace import Workspace, default_workspace_path


def open_workspace(args: argparse.Namespace, *, create: bool = False) -> Workspace:
    """Open the workspace named by ``-w`` (or the default); only ``import``-like commands create one."""
    path = args.workspace or default_workspace_path()
    return Workspace.open(path, create=create)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON document for scripts instead of tables."""
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
