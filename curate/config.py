"""Settings: `klint.toml` at the dataset root or `[tool.klint]` in a `pyproject.toml` above it.

Keys are kebab-case at the top level, like ruff.toml. CLI flags override the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
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
    # the table of a config klint found in or above the dataset (untrusted), re-checked for model
    # paths once plugins have declared theirs; None for the user's own config and --config FILE
    dataset_table: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def options_for(self, rule: Any) -> dict[str, Any]:
        """Rule defaults overlaid with `[rule-options."<name>"]` or `[rule-options.<CODE>]`.

        A value must have the type of the rule's default (a number where the default is a
        number, ...), so `threshold = "abc"` is one line naming the key, not a traceback
        deep in a rule; an unknown option gets a warning with the closest known name.
        """
        defaults = dict(getattr(rule, "options", {}) or {})
        merged = dict(defaults)
        for key in (rule.code, rule.name):
            given = self.rule_options.get(key, {})
            for opt, value in given.items():
                where = f"`rule-options.{key}.{opt}`{self._where()}"
                if opt not in defaults:
                    if defaults:
                        warn(f"unknown key {where}{_did_you_mean(opt, defaults)}")
                else:
                    _check_option_type(where, value, defaults[opt])
                merged[opt] = value
        return merged

    def _where(self) -> str:
        return f" in {self.source}" if self.source else ""


_KNOWN = {
    "trigger", "resolution", "model", "select", "ignore", "extend-select", "per-path-ignores",
    "rule-options", "repeats", "pose-model", "train",
}
# keys kept in `extra` for other parts of klint (`[rebalance]` is written by `fix --rebalance`)
_KNOWN_EXTRA = {"rebalance", "face-model", "plugins"}
# `[train]` keys and the types they take (the trainer and exporters read more; those are free)
_TRAIN_TYPES: dict[str, tuple[type, ...]] = {
    "repeats": (int,), "steps": (int,), "rank": (int,), "alpha": (int, float), "lr": (int, float),
    "model": (str,), "recipe": (str,), "speed": (str,), "optimizer": (str,), "kind": (str,),
}
MAX_DEPTH = 32
_warned: set[str] = set()


def warn(message: str) -> None:
    """A config warning on stderr, once per message per process."""
    if message not in _warned:
        _warned.add(message)
        from curate.cli.output import safe_text

        sys.stderr.write(f"klint: warning: {safe_text(message)}\n")


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _type_name(t: tuple[type, ...]) -> str:
    return {(int,): "an integer", (int, float): "a number", (float,): "a number", (str,): "a string",
            (bool,): "true or false", (list,): "a list", (dict,): "a table"}.get(t, "/".join(x.__name__ for x in t))


def _check_type(where: str, value: Any, types: tuple[type, ...]) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ConfigError(f"{where} must be {_type_name(types)}, got {_short(value)}")


def _check_option_type(where: str, value: Any, default: Any) -> None:
    if default is None:
        return
    if isinstance(default, bool):
        _check_type(where, value, (bool,))
    elif isinstance(default, (int, float)):
        _check_type(where, value, (int, float))
    elif isinstance(default, str):
        _check_type(where, value, (str,))
    elif isinstance(default, (list, tuple)):
        _check_type(where, value, (list,))
    elif isinstance(default, dict):
        _check_type(where, value, (dict,))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of lists/tables, counting no further than `limit` + 1."""
    stack = [(value, 0)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def _from_table(table: dict[str, Any], source: Path | None) -> Config:
    cfg = Config(source=source)
    where = f" in {source}" if source else ""
    if _depth(table) > MAX_DEPTH:
        raise ConfigError(f"config{where} is nested more than {MAX_DEPTH} levels deep")
    for key, value in table.items():
        if key not in _KNOWN:
            if key not in _KNOWN_EXTRA:
                warn(f"unknown key `{key}`{where}{_did_you_mean(key, _KNOWN | _KNOWN_EXTRA)}")
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
                raise ConfigError(f"`{key}` must be a table{where}, got {_short(value)}")
            value = _check_table(key, value, where)
        elif key == "pose-model":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"`pose-model` must be a path to an ultralytics pose model{where}, "
                                  f"got {_short(value)}")
        setattr(cfg, attr, value)
    return cfg


def _check_table(key: str, value: dict[str, Any], where: str) -> dict[str, Any]:
    if key == "repeats":
        for rel, n in value.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"`repeats.{rel}` must be an integer >= 1{where}, got {_short(n)}")
    elif key == "per-path-ignores":
        out = {}
        for pattern, codes in value.items():
            codes = [codes] if isinstance(codes, str) else codes
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise ConfigError(f"`per-path-ignores.{pattern}` must be a list of rule codes or names{where}, "
                                  f"got {_short(codes)}")
            out[pattern] = codes
        return out
    elif key == "rule-options":
        for rule, opts in value.items():
            if not isinstance(opts, dict):
                raise ConfigError(f"`rule-options.{rule}` must be a table of options{where}, got {_short(opts)}")
    elif key == "train":
        for opt, v in value.items():
            if opt in _TRAIN_TYPES:
                _check_type(f"`train.{opt}`{where}", v, _TRAIN_TYPES[opt])
                if opt in ("repeats", "steps", "rank") and v < 1:
                    raise ConfigError(f"`train.{opt}`{where} must be >= 1, got {v}")
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    from curate.dataset.safeio import MAX_CONFIG_BYTES, read_regular

    try:
        raw = read_regular(path, MAX_CONFIG_BYTES)
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None


def _tool_klint(path: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool")
    if tool is None:
        return None
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: `tool` must be a table")
    if "klint" not in tool:
        return None
    if not isinstance(tool["klint"], dict):
        raise ConfigError(f"{path}: [tool.klint] must be a table, got {_short(tool['klint'])}")
    return tool["klint"]


def find_config(root: Path) -> Path | None:
    """`klint.toml` at the dataset root, else the nearest `pyproject.toml` with `[tool.klint]`."""
    own = root / CONFIG_NAME
    if own.is_file():
        return own
    for parent in [root, *root.parents]:
        candidate = parent / "pyproject.toml"
        if candidate.is_file() and _tool_klint(candidate, _read_toml(candidate)) is not None:
            return candidate
    return None


def _table_of(path: Path) -> dict[str, Any]:
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        return _tool_klint(path, data) or {}
    return data


def _layer(user: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The dataset's settings over the user's; tables merge one level down (rule by rule)."""
    out = dict(user)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = dict(out[key])
            for k, v in value.items():
                merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
            out[key] = merged
        else:
            out[key] = value
    return out


def load_config(root: Path, explicit: Path | None = None) -> Config:
    """The user's own config (trusted), overlaid with the dataset's (model paths refused)."""
    from curate.trust import refuse_dataset_model_paths, user_config_path

    user_path = user_config_path()
    user: dict[str, Any] = {}
    if user_path is not None:
        if not user_path.is_file():
            raise ConfigError(f"{user_path}: user config file not found ($KLINT_CONFIG)")
        from curate.trust import anchor_model_paths

        user = anchor_model_paths(_table_of(user_path), user_path.parent)
        if _depth(user) > MAX_DEPTH:
            raise ConfigError(f"config in {user_path} is nested more than {MAX_DEPTH} levels deep")
    if explicit is not None and not explicit.is_file():
        raise ConfigError(f"{explicit}: config file not found")
    path = explicit or find_config(root)
    if path is None:
        return _from_table(user, user_path) if user else Config()
    data = _table_of(path)
    if explicit is None:
        refuse_dataset_model_paths(data, path)
    cfg = _from_table(_layer(user, data) if user else data, path)
    if explicit is None:
        cfg.dataset_table = data
    return cfg


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
