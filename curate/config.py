"""Settings: `klint.toml` at the dataset root or `[tool.klint]` in a `pyproject.toml` above it.

Keys are kebab-case at the top level, like ruff.toml. CLI flags override the file.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from curate.errors import ConfigError

CONFIG_NAME = "klint.toml"
MODELS = ("klein-4b", "klein-9b")


@dataclasses.dataclass
class Config:
    trigger: str | None = None
    resolution: int = 1024
    model: str = "klein-9b"
    select: list[str] = dataclasses.field(default_factory=lambda: ["ALL"])
    ignore: list[str] = dataclasses.field(default_factory=list)
    extend_select: list[str] = dataclasses.field(default_factory=list)
    per_path_ignores: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # rule name or code -> options table
    rule_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # per-image repeat counts written by `klint fix --rebalance` (relative posix path -> n)
    repeats: dict[str, int] = dataclasses.field(default_factory=dict)
    pose_model: str | None = None
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: Path | None = None  # the file these settings came from
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def options_for(self, rule: Any) -> dict[str, Any]:
        """Rule defaults overlaid with `[rule-options."<name>"]` or `[rule-options.<CODE>]`."""
        merged = dict(getattr(rule, "options", {}) or {})
        for key in (rule.code, rule.name):
            merged.update(self.rule_options.get(key, {}))
        return merged


_KNOWN = {
    "trigger", "resolution", "model", "select", "ignore", "extend-select", "per-path-ignores",
    "rule-options", "repeats", "pose-model", "train",
}


def _from_table(table: dict[str, Any], source: Path | None) -> Config:
    cfg = Config(source=source)
    where = f" in {source}" if source else ""
    for key, value in table.items():
        if key not in _KNOWN:
            cfg.extra[key] = value
            continue
        attr = key.replace("-", "_")
        if key == "resolution":
            if not isinstance(value, int) or isinstance(value, bool) or not 64 <= value <= 8192:
                raise ConfigError(f"`resolution` must be an integer between 64 and 8192{where}, got {value!r}")
        elif key == "model":
            if value not in MODELS:
                raise ConfigError(f"`model` must be one of {', '.join(MODELS)}{where}, got {value!r}")
        elif key in ("select", "ignore", "extend-select"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"`{key}` must be a list of rule codes or names{where}")
        elif key == "trigger":
            if not isinstance(value, str) or not value.strip() or any(c in value for c in ",\n"):
                raise ConfigError(f"`trigger` must be a single word or phrase{where}, got {value!r}")
            value = value.strip()
        elif key in ("per-path-ignores", "rule-options", "repeats", "train"):
            if not isinstance(value, dict):
                raise ConfigError(f"`{key}` must be a table{where}")
            if key == "repeats" and not all(isinstance(v, int) and v >= 1 for v in value.values()):
                raise ConfigError(f"`repeats` values must be integers >= 1{where}")
        setattr(cfg, attr, value)
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None


def find_config(root: Path) -> Path | None:
    """`klint.toml` at the dataset root, else the nearest `pyproject.toml` with `[tool.klint]`."""
    own = root / CONFIG_NAME
    if own.is_file():
        return own
    for parent in [root, *root.parents]:
        candidate = parent / "pyproject.toml"
        if candidate.is_file() and "klint" in _read_toml(candidate).get("tool", {}):
            return candidate
    return None


def load_config(root: Path, explicit: Path | None = None) -> Config:
    path = explicit or find_config(root)
    if path is None:
        return Config()
    if explicit is not None and not explicit.is_file():
        raise ConfigError(f"{explicit}: config file not found")
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("klint", {})
    return _from_table(data, path)


def apply_overrides(cfg: Config, **overrides: Any) -> Config:
    """CLI flags win over the file; None means 'not given'."""
    for key, value in overrides.items():
        if value is None or value == () or value == []:
            continue
        if key in ("select", "ignore"):
            value = [v for item in value for v in str(item).split(",") if v]
        if key == "trigger":
            _from_table({"trigger": value}, None)
        setattr(cfg, key, value)
    return cfg
