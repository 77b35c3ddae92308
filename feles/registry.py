"""Named plug-in registries: built-ins register by name, users by `package.module:Attribute`.

An import path must name a subclass of the registry's base class, or a function marked with `@plugin(kind)`;
that is checked right after the import, before anything the path names is called. Importing a module runs its
top-level code: a spec that names import paths is code (docs/reliability.md, "A spec is code").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

#: Attribute a `@plugin(kind)` function carries: the kind of plug-in it is a factory of.
PLUGIN_MARK = "__feles_plugin__"


def plugin(kind: str) -> Callable[[F], F]:
    """Mark a function as a factory of `kind` plug-ins (e.g. "model", "initializer"), so that an import path
    may name it; without the mark an import path must name a subclass of the registry's base class."""

    def mark(function: F) -> F:
        setattr(function, PLUGIN_MARK, kind)
        return function

    return mark


class UnknownPluginError(LookupError):
    """A plug-in name that is neither registered nor an importable `module:attribute` path."""


class Registry(Generic[T]):
    """A mapping from names to plug-ins of one kind (datasets, models, selectors, ...)."""

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        #: What an import path must name: a subclass of `base`, or a function marked `@plugin(kind)`.
        self.base = base
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
            entry = getattr(module, attribute)
        except AttributeError:
            raise UnknownPluginError(f"module {module_name!r} has no {self.kind} {attribute!r}") from None
        self._check(path, entry)
        return entry

    def _check(self, path: str, entry: object) -> None:
        """UnknownPluginError unless `entry` is a subclass of the base or a function marked for this kind."""
        if self.base is not None and isinstance(entry, type) and issubclass(entry, self.base):
            return
        if callable(entry) and not isinstance(entry, type) and getattr(entry, PLUGIN_MARK, None) == self.kind:
            return
        wanted = [f"a subclass of {self.base.__module__}.{self.base.__qualname__}"] if self.base is not None else []
        wanted.append(f"a function decorated with @feles.registry.plugin({self.kind!r})")
        raise UnknownPluginError(f"{path!r} is not a {self.kind}: an import path must name {' or '.join(wanted)}")

    def is_import_path(self, name: str) -> bool:
        """Whether `name` is an import path (user code) rather than a registered name."""
        return name not in self._entries and ":" in name

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
