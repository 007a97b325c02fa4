"""Forward-only schema migrations.

Each module ``mNNNN_<name>.py`` in this package defines ``VERSION: int``, ``DESCRIPTION: str`` and
``apply(con)``. They are applied in version order, each in its own transaction, and recorded in
``schema_migrations``. A workspace written by newer code (a higher version than we know) is refused
rather than guessed at.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

import duckdb

from curation.errors import UserError


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    description: str
    module: ModuleType

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        self.module.apply(con)


def all_migrations() -> list[Migration]:
    """Every migration in this package, in version order (versions must be unique)."""
    found: dict[int, Migration] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        version = int(mod.VERSION)
        if version in found:
            raise RuntimeError(
                f"two migrations claim version {version}: {found[version].module.__name__}, {mod.__name__}"
            )
        found[version] = Migration(version, str(mod.DESCRIPTION), mod)
    return [found[v] for v in sorted(found)]


def latest_version() -> int:
    """The highest schema version this code knows."""
    return max(m.version for m in all_migrations())


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The workspace's schema version (0 for an empty file)."""
    has = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema='main' AND table_name='schema_migrations'"
    ).fetchall()[0][0]
    if not has:
        return 0
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchall()
    return int(row[0][0] or 0)


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The versions recorded in ``schema_migrations`` (empty for a new file)."""
    if current_version(con) == 0:
        return set()
    return {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> list[int]:
    """Apply every migration the workspace lacks (up to ``target``), in order; return the versions applied.

    Missing versions below the newest applied one are filled in too: features land in parallel, so a workspace
    can have v6 without v4 (made by code that had v6 first). Each migration only adds its own tables.
    """
    migrations = all_migrations()
    newest = migrations[-1].version
    target = newest if target is None else target
    have = current_version(con)
    if have > newest:
        raise UserError(
            f"this workspace has schema v{have} but this Distill Studio knows up to v{newest}; upgrade distill-studio"
        )
    done = applied_versions(con)
    applied: list[int] = []
    for m in migrations:
        if m.version in done or m.version > target:
            continue
        cur = con.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            m.apply(cur)
            cur.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, now())",
                [m.version, m.description],
            )
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        cur.close()
        applied.append(m.version)
    return applied
