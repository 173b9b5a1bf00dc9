"""One registry for every named component (channels, codecs, baselines, datasets, ...).

The CLI, scenario files and the contract tests all read it, so no table of names is written
twice.  Components register themselves with :func:`register` when their module is imported;
:func:`available` and :func:`build` import the family's package first, so callers never need
to know which module defines what.

    >>> from semguard.registry import build, available
    >>> "awgn" in available("channel")
    True
    >>> ch = build("channel", "rician", k_factor=10.0)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["FAMILIES", "register", "available", "build", "get", "RegistryError"]

# family -> the package whose import registers that family's members
FAMILIES: dict[str, str] = {
    "channel": "semguard.channels.members",
    "codec": "semguard.codecs",
    "baseline": "semguard.baselines",
    "dataset": "semguard.data",
    "cipher": "semguard.keys.ciphers",
    "fusion": "semguard.network",
    "attack": "semguard.attacks",
    "defense": "semguard.defenses",
    "fl_attack": "semguard.federated.attacks",
    "fl_strategy": "semguard.federated.strategy",
}

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {f: {} for f in FAMILIES}

T = TypeVar("T", bound=Callable[..., Any])


class RegistryError(KeyError):
    """An unknown family or name; the message lists what is available."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def register(family: str, name: str) -> Callable[[T], T]:
    """Class/function decorator: make ``factory`` buildable as ``build(family, name)``."""
    if family not in _REGISTRY:
        raise RegistryError(f"unknown family {family!r}; families: {sorted(_REGISTRY)}")

    def deco(factory: T) -> T:
        table = _REGISTRY[family]
        if name in table and table[name] is not factory:
            raise RegistryError(f"{family} {name!r} registered twice")
        table[name] = factory
        return factory

    return deco


def _load(family: str) -> dict[str, Callable[..., Any]]:
    if family not in FAMILIES:
        raise RegistryError(f"unknown family {family!r}; families: {sorted(FAMILIES)}")
    importlib.import_module(FAMILIES[family])
    return _REGISTRY[family]


def available(family: str | None = None) -> list[str] | dict[str, list[str]]:
    """Sorted names in ``family``, or a dict of every family's names when ``family`` is None."""
    if family is None:
        return {f: sorted(_load(f)) for f in FAMILIES}
    return sorted(_load(family))


def get(family: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` in ``family``."""
    table = _load(family)
    if name not in table:
        raise RegistryError(f"no {family} named {name!r}; available: {', '.join(sorted(table))}")
    return table[name]


def build(family: str, name: str, /, **kwargs: Any) -> Any:
    """Instantiate ``name`` from ``family`` with keyword arguments."""
    return get(family, name)(**kwargs)
