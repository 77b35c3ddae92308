"""Named plug-in registries: built-ins register by name, users by `package.module:Attribute`."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownPluginError(LookupError):
    """A plug-in name that is neither registered nor an importable `module:attribute` path."""


class Registry(Generic[T]):
    """A mapping from names to plug-ins of one kind (datasets, models, selectors, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers a plug-in under `name`."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        """The plug-in called `name`, or the attribute an import path `pkg.mod:Attr` names."""
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            return self._import(name)
        known = ", ".join(sorted(self._entries))
        raise UnknownPluginError(
            f"unknown {self.kind} {name!r}; known: {known} (or give an import path 'package.module:Name')"
        )

    def _import(self, path: str) -> T:
        module_name, _, attribute = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise UnknownPluginError(f"cannot import {self.kind} module {module_name!r}: {error}") from error
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise UnknownPluginError(f"module {module_name!r} has no {self.kind} {attribute!r}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
