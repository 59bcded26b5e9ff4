"""Which settings may name model files, and where those settings may come from.

Loading model weights can run code: an ultralytics `.pt` is a pickle, and a pickle runs
whatever its author wrote when it is loaded. A dataset is untrusted input (people download
and share them, and pre-commit runs klint on every clone), so a model path written in a
dataset's own config (`klint.toml`, or `[tool.klint]` in a `pyproject.toml` that klint found by
searching from the dataset) is refused. Model paths are trusted when they come from:

- the command line (`--pose-model`, `--model`, `--config FILE`),
- the user's own config: `$KLINT_CONFIG`, else `$XDG_CONFIG_HOME/klint/config.toml`
  (default `~/.config/klint/config.toml`),
- or a dataset config the user vouches for with `--trust-dataset-models` or
  `KLINT_TRUST_DATASET_MODELS=1`.

A key names a model when its name matches a declared pattern (`pose-model`, `face-model`,
`tokenizer`, `*-model`, `*-weights`, `*-checkpoint`, ... at any depth, `[rule-options]` and
`[train]` included); plugins add theirs with `declare_model_key()`. Only values that point
at something on disk are refused: a hub id or a symbolic name (`tiny`, `klein-9b`) names no
file the dataset could ship.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any, Iterator

from curate.errors import ConfigError

TRUST_ENV = "KLINT_TRUST_DATASET_MODELS"
TRUST_FLAG = "--trust-dataset-models"
USER_CONFIG_ENV = "KLINT_CONFIG"

_MODEL_KEYS: list[str] = [
    "pose-model", "face-model", "tokenizer", "model", "*-model", "*-models", "weights", "*-weights",
    "checkpoint", "*-checkpoint", "*-tokenizer", "vae", "text-encoder", "transformer", "lora", "*-lora",
    "base", "onnx", "*-onnx", "*-path",
]
# tables whose keys are dataset file paths or rule codes, never model files
_NOT_MODEL_TABLES = {"repeats", "rebalance", "per-path-ignores", "select", "ignore", "extend-select"}
# top-level `model` is the klein variant (klein-4b / klein-9b), not a path
_TOP_LEVEL_NOT_MODEL = {"model"}
MAX_DEPTH = 32

_trusted_by_flag = False


def declare_model_key(pattern: str) -> None:
    """Plugins: a config key (fnmatch pattern on the key's own name) that names a model file.

    Call it at import time of the plugin module; lint re-checks the dataset's config once the
    plugins are loaded, so a declared key is refused like the built-in ones."""
    if pattern not in _MODEL_KEYS:
        _MODEL_KEYS.append(pattern)


def trust_dataset_models(value: bool = True) -> None:
    """What `--trust-dataset-models` does: the dataset's own model paths are used as given."""
    global _trusted_by_flag
    _trusted_by_flag = value


def dataset_models_trusted() -> bool:
    return _trusted_by_flag or os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def is_model_key(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in _MODEL_KEYS)


def user_config_path() -> Path | None:
    """The user's own config file (outside any dataset), if there is one."""
    explicit = os.environ.get(USER_CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    cand = Path(base) / "klint" / "config.toml"
    return cand if cand.is_file() else None


def model_path_values(table: dict[str, Any], _prefix: str = "", _depth: int = 0) -> Iterator[tuple[str, str]]:
    """(dotted key, value) for every string a model key holds, at any depth of the table."""
    if _depth > MAX_DEPTH:
        return
    for key, value in table.items():
        if not isinstance(key, str):
            continue
        dotted = f"{_prefix}{key}"
        if not _prefix and key in _NOT_MODEL_TABLES:
            continue
        if isinstance(value, dict):
            yield from model_path_values(value, dotted + ".", _depth + 1)
            continue
        if not is_model_key(key) or (not _prefix and key in _TOP_LEVEL_NOT_MODEL):
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v.strip():
                yield dotted, v


def anchor_model_paths(table: dict[str, Any], base: Path, _prefix: str = "", _depth: int = 0) -> dict[str, Any]:
    """Relative model paths in the user's config mean relative to that file, never to a dataset."""
    if _depth > MAX_DEPTH:
        return table
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and not (not _prefix and key in _NOT_MODEL_TABLES):
            value = anchor_model_paths(value, base, f"{_prefix}{key}.", _depth + 1)
        elif (isinstance(value, str) and value.strip() and is_model_key(str(key))
              and not (not _prefix and key in _TOP_LEVEL_NOT_MODEL)):
            p = Path(value).expanduser()
            if not p.is_absolute() and (base / p).exists():
                value = str(base / p)
        out[key] = value
    return out


def names_local_path(value: str, base: Path | None) -> bool:
    """Would a loader find `value` on disk (relative to the config file or the cwd)?"""
    if "\x00" in value:
        return True
    p = Path(value).expanduser()
    candidates = [p] if p.is_absolute() else [p, *([base / p] if base is not None else [])]
    for c in candidates:
        try:
            if os.path.lexists(c):
                return True
        except (OSError, ValueError):
            return True
    return False


def refuse_dataset_model_paths(table: dict[str, Any], source: Path) -> None:
    """Raise one line for the first model path a dataset's own config names.

    Called for every config klint found by itself inside or above a dataset; not for the
    user's own config nor for `--config FILE`.
    """
    if dataset_models_trusted():
        return
    for dotted, value in model_path_values(table):
        if names_local_path(value, source.parent):
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise ConfigError(
                f"{source}: `{dotted}` = {shown!r} names a model file in the dataset's own config, and loading "
                f"model weights can run code; put it in your own config (${USER_CONFIG_ENV} or "
                f"~/.config/klint/config.toml) or pass {TRUST_FLAG} (or {TRUST_ENV}=1) if you trust this dataset")
