"""A module imported on first use of one of its attributes.

Every CLI command registers its options at start, and an operation declares its options beside its code
(``curation.options``): so ``distill studio`` imported dedupe, embeddings and neighbors, and with them numpy and
pyarrow (~0.25 s of its ~1 s start), for options it never reads. ``np = lazy_module("numpy")`` keeps the module's
code as it was (``np.zeros``...) and loads numpy at the first such call. Annotations are strings (``from __future__
import annotations``), so they load nothing; import the real module under ``TYPE_CHECKING`` for type checkers.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (loaded)' if self._module is not None else ''}>"


def lazy_module(name: str) -> Any:
    """A stand-in for ``import name`` that imports it when one of its attributes is first read."""
    return _LazyModule(name)
