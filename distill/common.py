"""Helpers for subcommand handlers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from curation.options import OptionSet
from curation.workspace import Workspace, default_workspace_path

RAW = argparse.RawDescriptionHelpFormatter


def workspace_path(args: argparse.Namespace) -> Path:
    """The workspace file named by ``-w``, or the default (``$DISTILL_WORKSPACE``, else ``./distill.duckdb``)."""
    named = getattr(args, "workspace", None)
    return Path(named) if named else default_workspace_path()


def open_workspace(args: argparse.Namespace, *, create: bool = False) -> Workspace:
    """Open the workspace named by ``-w`` (or the default); only ``import``-like commands create one."""
    return Workspace.open(workspace_path(args), create=create)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON document for scripts instead of tables."""
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")


def add_dry_run(p: argparse.ArgumentParser, help: str = "preview only; change nothing") -> None:
    """``--dry-run``: print the preview, store nothing."""
    p.add_argument("--dry-run", action="store_true", help=help)


def read_options(options: OptionSet, args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    """The declared options of a command, parsed and checked against the workspace (as the studio does)."""
    return options.resolve(ws, options.from_args(args))
