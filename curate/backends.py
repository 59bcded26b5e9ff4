"""The backend registry (tox-style): plugins register import strings; nothing loads until used.

    @hookimpl
    def klint_register_backends(registry):
        registry.add("trainer", "builtin", "plugins.builtin_trainer.backend:BuiltinTrainer",
                     requires=("torch", "diffusers", "peft", "bitsandbytes"), extra="train",
                     summary="built-in GPU LoRA trainer")

Kinds: "trainer" (trains or exports a training job) and "inference".
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from typing import Any, Protocol, runtime_checkable

from curate.errors import KlintError, MissingDependency

KINDS = ("trainer", "inference")


@runtime_checkable
class TrainerBackend(Protocol):
    name: str

    def run(self, job: Any) -> int: ...


@runtime_checkable
class InferenceBackend(Protocol):
    name: str

    def run(self, job: Any) -> int: ...


_PROTOCOLS = {"trainer": TrainerBackend, "inference": InferenceBackend}


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    kind: str
    name: str
    target: str  # "module:attribute"
    requires: tuple[str, ...] = ()  # importable module names
    extra: str | None = None  # pip extra that installs `requires`
    summary: str = ""
    limitations: tuple[str, ...] = ()  # what this backend cannot express

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def install_hint(self) -> str:
        if self.extra:
            return f'pip install -e ".[{self.extra}]"  (or pip install "klint[{self.extra}]")'
        return "pip install " + " ".join(self.missing())


class BackendRegistry:
    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], BackendSpec] = {}

    def add(self, kind: str, name: str, target: str, **kw: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown backend kind {kind!r}; expected one of {KINDS}")
        if ":" not in target:
            raise ValueError(f"backend target must be 'module:attribute', got {target!r}")
        key = (kind, name)
        if key in self._specs and self._specs[key].target != target:
            raise ValueError(f"{kind} backend {name!r} registered twice")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
        self._specs[key] = BackendSpec(kind=kind, name=name, target=target, **kw)

    def specs(self, kind: str | None = None) -> list[BackendSpec]:
        return sorted((s for s in self._specs.values() if kind is None or s.kind == kind),
                      key=lambda s: (s.kind, s.name))

    def spec(self, kind: str, name: str) -> BackendSpec:
        try:
            return self._specs[(kind, name)]
        except KeyError:
            names = ", ".join(s.name for s in self.specs(kind)) or "none"
            raise KlintError(f"unknown {kind} backend {name!r} (available: {names})") from None

    def get(self, kind: str, name: str) -> Any:
        """Import and instantiate a backend, after checking its dependencies."""
        spec = self.spec(kind, name)
        missing = spec.missing()
        if missing:
            raise MissingDependency(f"backend {name!r} needs {', '.join(missing)}: run {spec.install_hint()}")
        module, attr = spec.target.split(":")
        obj = getattr(importlib.import_module(module), attr)
        backend = obj() if isinstance(obj, type) else obj
        if not isinstance(backend, _PROTOCOLS[kind]):
            raise KlintError(f"backend {name!r} ({spec.target}) does not implement the {kind} protocol")
        return backend


def get_registry(pm=None) -> BackendRegistry:
    if pm is None:
        from curate.plugin.manager import get_plugin_manager

        pm = get_plugin_manager()
    registry = BackendRegistry()
    pm.hook.klint_register_backends(registry=registry)
    return registry
