"""Shared machinery for exporters: repeat plan, dataset layout, run.sh, finding and streaming the tool.

An exporter never writes outside `--out` and never moves a user's file: images are hard-linked or copied
(symlinked only with --link), captions are written as new files inside `--out`, and every path a config or
run.sh names is relative to `--out`, so the job still works after `rsync -a` to another machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

import click

from curate.errors import KlintError
from curate.recipes import check_recipe

MARKER = ".klint-export"  # proves `--out` was written by klint, so re-exporting may clear it
# the seed's repeats math assumes ~10 images (90-120 repeats x 10 = 900-1200 samples per epoch)
REFERENCE_IMAGES = 10
# auto: hard link where the job shares the dataset's file system, else a copy; both survive `rsync -a`
LINK_MODES = ("auto", "copy", "hardlink", "symlink")
FULL_BODY = ("full-body", "full_body", "fullbody", "full")


# ----------------------------------------------------------------------------- job access

def opts(job: Any) -> dict[str, Any]:
    """Backend flags (run, tool_path, vae, text_encoder, link) from `job.options` or job attributes."""
    merged: dict[str, Any] = {}
    for key in ("run", "tool_path", "vae", "text_encoder", "link"):
        value = getattr(job, key, None)
        if value is not None:
            merged[key] = value
    merged.update({k: v for k, v in (getattr(job, "options", None) or {}).items() if v is not None})
    return merged


def out_dir(job: Any) -> Path:
    out = getattr(job, "out_dir", None) or getattr(job, "out", None)
    if out is None:
        raise KlintError("--out DIR is required for an export backend")
    return Path(out)


def item_get(item: Any, key: str, default: Any = None) -> Any:
    return item.get(key, default) if isinstance(item, dict) else getattr(item, key, default)


def is_full_body(item: Any) -> bool:
    return (item_get(item, "framing") or "").lower() in FULL_BODY


# ----------------------------------------------------------------------------- repeats

def plan_repeats(items: Sequence[Any], avg_repeats: int) -> dict[str, int]:
    """Per-image repeats: the same numbers `klint fix --rebalance` prints (one function computes both)."""
    from curate.fix.trainplan import repeats_per_image

    return repeats_per_image({item_get(it, "rel"): int(item_get(it, "repeats", 1) or 1) for it in items}, avg_repeats)


def epochs_for(steps: int, samples_per_epoch: int, batch: int = 1, accumulation: int = 1) -> int:
    """Whole epochs covering at least `steps` optimizer steps (the tool then stops at exactly `steps`)."""
    per_epoch = max(1, samples_per_epoch // max(1, batch * accumulation))
    return max(1, math.ceil(steps / per_epoch))


# ----------------------------------------------------------------------------- layout

@dataclasses.dataclass(frozen=True)
class Group:
    """One folder of images sharing a repeat count (one `[[directory]]` / `[[datasets]]` / dataset entry)."""

    repeats: int
    rel_dir: str  # posix, relative to --out
    files: tuple[str, ...]  # image file names inside rel_dir, sorted


def safe_component(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")
    return cleaned or "images"


def flat_name(rel: str) -> str:
    """`sub/dir/img.jpg` -> `sub__dir__img.jpg`: one flat folder per repeat group, no collisions."""
    return "__".join(rel.split("/"))


def prepare_out(out: Path, dataset_root: Path) -> None:
    """Refuse an --out that overlaps the dataset or holds someone else's files; clear our own old export."""
    out_r, root_r = out.resolve(), Path(dataset_root).resolve()
    if out_r == root_r or root_r in out_r.parents:
        raise KlintError(f"--out {out} is inside the dataset {dataset_root}; choose a folder outside it")
    if out_r in root_r.parents:
        raise KlintError(f"--out {out} contains the dataset {dataset_root}; choose a separate folder")
    if out.exists() and not out.is_dir():
        raise KlintError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise KlintError(f"--out {out} is not empty and was not written by klint; choose an empty folder")
        for child in sorted(out.iterdir()):
            # links are removed as links: their targets (the user's images) are never touched
            if child.is_symlink() or child.is_file():
                child.unlink()
            elif child.name not in ("output", "cache"):  # keep a previous run's results and caches
                shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by klint train; safe to delete\n", encoding="utf-8")


def _place(src: Path, dest: Path, mode: str) -> None:
    if mode == "copy":
        shutil.copy2(src, dest)
        return
    try:
        if mode == "symlink":  # --link: on purpose, the job then only works where the dataset is
            os.symlink(src.resolve(), dest)
        else:
            os.link(src.resolve(), dest)
    except OSError:  # another file system, or one without links: a copy is always self-contained
        shutil.copy2(src, dest)


def materialize(items: Sequence[Any], repeats: dict[str, int], out: Path, subdir: str, trigger: str | None,
                mode: str = "auto") -> list[Group]:
    """Lay `items` out under out/subdir/<repeats>_<trigger>/ (kohya-style names), larger repeats first."""
    if mode not in LINK_MODES:
        raise KlintError(f"unknown link mode {mode!r} (available: {', '.join(LINK_MODES)})")
    by_count: dict[int, list[Any]] = {}
    for it in items:
        by_count.setdefault(repeats[item_get(it, "rel")], []).append(it)
    label = safe_component(trigger) if trigger else "images"
    groups: list[Group] = []
    for count in sorted(by_count, reverse=True):
        rel_dir = f"{subdir}/{count}_{label}"
        folder = out / rel_dir
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for it in sorted(by_count[count], key=lambda i: item_get(i, "rel")):
            rel = item_get(it, "rel")
            name = flat_name(rel)
            src = Path(item_get(it, "image"))
            if not src.is_file():
                raise KlintError(f"{rel}: image not found at {src}")
            _place(src, folder / name, mode)
            caption = (item_get(it, "caption") or "").strip() + "\n"
            (folder / (name.rsplit(".", 1)[0] + ".txt")).write_text(caption, encoding="utf-8")
            names.append(name)
        groups.append(Group(count, rel_dir, tuple(names)))
    return groups


def samples(groups: Iterable[Group]) -> int:
    return sum(g.repeats * len(g.files) for g in groups)


# ----------------------------------------------------------------------------- model files

def check_models(res: Any, dry_run: bool, warnings: list[str]) -> None:
    """Refuse a model set with missing files (one line); with --dry-run, a loud warning naming each."""
    if not res.missing:
        return
    what = "; ".join(res.missing)
    hint = (" - " + "; ".join(res.hints)) if res.hints else ""
    if not dry_run:
        raise KlintError(f"model files not found on this machine: {what}{hint} "
                         "(pass --dry-run to prepare a job for another machine)")
    warnings.append(f"MODEL FILES NOT CHECKED (not on this machine): {what}{hint}; "
                    "the job uses these paths as written")


# ----------------------------------------------------------------------------- numbers

def plain_float(x: float) -> str:
    """0.0001, never 1e-4: YAML 1.1 (PyYAML) reads `1e-4` as a string."""
    text = format(Decimal(repr(float(x))), "f")
    return text if "." in text else text + ".0"


def yaml_dump(data: Any) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(float, lambda d, v: d.represent_scalar("tag:yaml.org,2002:float", plain_float(v)))
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's escapes are valid in TOML basic strings
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, dict) for x in v)


def toml_dump(data: dict[str, Any], header: Sequence[str] = (), inline: Sequence[str] = ("text_encoders",)) -> str:
    """TOML in the shape the tools' docs show: `[table]`, `[[array]]` always, chosen keys inline.

    (tomli_w switches between inline and `[[...]]` by line length, so a long path would change the layout.)
    """
    lines = [f"# {h}" for h in header]
    if lines:
        lines.append("")

    def emit(table: dict[str, Any], path: str) -> None:
        nested = []
        for k, v in table.items():
            if (isinstance(v, dict) or _is_table_array(v)) and k not in inline:
                nested.append((k, v))
            else:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in nested:
            sub = f"{path}.{_toml_key(k)}" if path else _toml_key(k)
            if isinstance(v, dict):
                lines.extend(["", f"[{sub}]"])
                emit(v, sub)
            else:
                for entry in v:
                    lines.extend(["", f"[[{sub}]]"])
                    emit(entry, sub)

    emit(data, "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


# ----------------------------------------------------------------------------- commands

@dataclasses.dataclass(frozen=True)
class ToolSpec:
    name: str  # backend name, e.g. "ai-toolkit"
    env_var: str  # run.sh reads the tool checkout from this variable
    entries: tuple[str, ...]  # entry script, relative to the tool checkout, first match wins


def shell_join(argv: Sequence[str]) -> str:
    """Quote for bash, keeping `"$VAR/..."` references expandable."""
    parts = []
    for a in argv:
        if a.startswith("$"):
            parts.append('"' + a + '"')
        else:
            parts.append(shlex.quote(a))
    return " ".join(parts)


def write_script(out: Path, tool: ToolSpec, tool_dir: str | None, commands: Sequence[str],
                 comments: Sequence[str] = ()) -> Path:
    default = (f'"${{{tool.env_var}:-{tool_dir}}}"' if tool_dir
               else f'"${{{tool.env_var}:?set {tool.env_var} to your {tool.name} checkout}}"')
    lines = ["#!/usr/bin/env bash",
             f"# {tool.name} job written by klint; run it from anywhere: it changes into its own folder.",
             *[f"# {c}" for c in comments],
             "set -euo pipefail",
             'cd "$(dirname "$0")"',
             f"{tool.env_var}={default}",
             'PYTHON="${PYTHON:-python}"',
             "",
             *commands]
    path = out / "run.sh"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def find_tool(tool: ToolSpec, tool_path: str | os.PathLike | None) -> Path:
    """The tool checkout: --tool-path (folder or entry script), then $ENV_VAR, then a PATH folder holding the entry."""
    tried: list[str] = []

    def match(base: Path) -> Path | None:
        for entry in tool.entries:
            candidate = base / entry
            tried.append(str(candidate))
            if candidate.is_file():
                return base
        return None

    if tool_path:
        p = Path(tool_path).expanduser()
        if p.is_file() and any(p.as_posix().endswith(e) for e in tool.entries):
            entry = next(e for e in tool.entries if p.as_posix().endswith(e))
            return Path(p.as_posix()[: -len(entry)] or ".").resolve()
        found = match(p)
        if found is None:
            raise KlintError(f"--tool-path {tool_path}: no {tool.name} entry script there "
                             f"(looked for {', '.join(tool.entries)})")
        return found.resolve()
    env = os.environ.get(tool.env_var)
    if env:
        found = match(Path(env).expanduser())
        if found is not None:
            return found.resolve()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d:
            continue
        for entry in tool.entries:
            name = Path(entry).name
            candidate = Path(d) / name
            if candidate.is_file():
                # the entry sits in the checkout's subfolder: walk back up to the checkout root
                root = Path(d)
                for _ in Path(entry).parent.parts:
                    root = root.parent
                return root.resolve()
    raise KlintError(f"cannot find {tool.name}: looked for {' or '.join(tool.entries)} via --tool-path, "
                     f"${tool.env_var} and PATH; pass --tool-path DIR (your {tool.name} checkout)")


def stream(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> int:
    """Run a command, passing its output through as it arrives (tqdm's \\r bars included); its exit code."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        raise KlintError(f"cannot start {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None
    sink = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    try:
        while True:
            chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(1)
            if not chunk:
                break
            if sink is not None:
                sink.write(chunk)
                sink.flush()
            else:  # pragma: no cover - captured stdout without a byte buffer
                sys.stdout.write(chunk.decode("utf-8", "replace"))
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    return proc.wait()


# ----------------------------------------------------------------------------- the backend base

@dataclasses.dataclass(frozen=True)
class StepRow:
    """One line of the plan's step table: what the recipe asks and what the tool will run."""

    stage: str
    recipe_steps: int
    tool_steps: int
    how: str  # the setting that makes the tool stop there, or why it cannot stop exactly


@dataclasses.dataclass
class Export:
    """What an exporter's `write` sees: the job, resolved numbers, model files and the laid-out groups."""

    job: Any
    out: Path
    recipe: Any
    name: str
    trigger: str | None
    resolution: int
    groups: list[Group]
    stage2_groups: list[Group]
    tool_dir: str | None
    models: Any = None  # models.Resolved
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # plan lines and run.sh comments
    steps: list[StepRow] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)

    @property
    def variant(self) -> str:
        return self.recipe.model

    @property
    def base_dtype(self) -> str:
        return getattr(self.job, "base_dtype", None) or self.recipe.base_dtype

    @property
    def checkpoint_every(self) -> int:
        return int(getattr(self.job, "checkpoint_every", 0) or 0)

    def write(self, rel: str, text: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files.append(rel)


def usable_items(job: Any) -> list[Any]:
    """The job's images, after the checks no export may skip (trigger word, decodable images)."""
    from curate.train_job import check_trainable

    items = [it for it in job.items if item_get(it, "image") is not None]
    check_trainable(getattr(job, "trigger", None), items)
    return items


class Exporter:
    """Base for the tool exporters: subclasses set `name`, `tool` and implement `write(ex) -> commands`."""

    name = ""
    tool: ToolSpec

    def write(self, ex: Export) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate(self, job: Any) -> None:
        """Refuse what the tool cannot express, before anything is written."""

    def models(self, job: Any) -> Any:
        """The model files this tool opens (models.Resolved)."""
        raise NotImplementedError

    def run(self, job: Any) -> int:
        from plugins.exporters.models import describe_model

        o = opts(job)
        recipe = job.recipe
        check_recipe(recipe)
        if not str(getattr(job, "model", "") or "").strip():
            raise KlintError(f"--model PATH is required for {self.name} (the base model on the training machine)")
        dry_run = bool(getattr(job, "dry_run", False))
        if dry_run and o.get("run"):
            raise KlintError("--dry-run and --run cannot be combined")
        self.validate(job)
        warnings: list[str] = []
        resolved = self.models(job)
        check_models(resolved, dry_run, warnings)
        tool_dir = None
        if o.get("run"):
            tool_dir = str(find_tool(self.tool, o.get("tool_path")))
        elif o.get("tool_path"):
            tool_dir = str(Path(o["tool_path"]).expanduser().resolve())

        items = usable_items(job)
        if not items:
            raise KlintError("no captioned images to train on")
        out = out_dir(job)
        prepare_out(out, job.dataset_root)
        repeats = plan_repeats(items, recipe.repeats)
        trigger = getattr(job, "trigger", None)
        mode = o.get("link") or "auto"
        groups = materialize(items, repeats, out, "dataset", trigger, mode)
        stage2: list[Group] = []
        if getattr(job, "two_stage", False):
            full = [it for it in items if is_full_body(it)]
            if not full:
                raise KlintError("--two-stage needs full-body images for stage 2 and none is marked full-body "
                                 "(framing comes from the pose analysis: lint with it enabled)")
            stage2 = materialize(full, repeats, out, "dataset_stage2", trigger, mode)
        label = safe_component(trigger or Path(job.dataset_root).resolve().name)
        about, model_notes = describe_model(str(job.model), recipe.model)
        ex = Export(job=job, out=out, recipe=recipe, name=f"{label}_{recipe.model.replace('-', '')}",
                    trigger=trigger, resolution=int(getattr(job, "resolution", None) or recipe.resolution),
                    groups=groups, stage2_groups=stage2, tool_dir=tool_dir, models=resolved,
                    warnings=[*warnings, *model_notes], notes=[f"model: {about}"])
        commands = self.write(ex)
        script = write_script(out, self.tool, tool_dir, commands, ex.notes)
        self.report(ex, script, commands)
        if not o.get("run"):
            return 0
        click.echo(f"klint: running {self.name} from {tool_dir}", err=True)
        env = {self.tool.env_var: tool_dir}
        rc = stream(["bash", str(script.resolve())], cwd=out, env=env)
        if rc != 0:
            click.echo(f"klint: {self.name} exited with status {rc}", err=True)
        return rc

    def report(self, ex: Export, script: Path, commands: Sequence[str]) -> None:
        for w in ex.warnings:
            click.echo(f"klint: warning: {w}", err=True)
        n = sum(len(g.files) for g in ex.groups)
        click.echo(f"{self.name} job written to {ex.out} ({n} images in {len(ex.groups)} repeat group(s), "
                   f"{samples(ex.groups)} samples per epoch; self-contained unless --link)")
        for line in ex.notes:
            click.echo(f"  {line}")
        if ex.steps:
            click.echo(step_table(ex.steps))
        for rel in ex.files:
            click.echo(f"  {rel}")
        click.echo(f"commands ({script.name}, runs from any folder):")
        for c in commands:
            if c and not c.startswith("#"):
                click.echo(f"  {c}")


def step_table(rows: Sequence[StepRow]) -> str:
    head = ("stage", "recipe steps", "tool steps", "how")
    table = [head, *[(r.stage, str(r.recipe_steps), str(r.tool_steps), r.how) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = ["steps:"]
    for row in table:
        lines.append("  " + "  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3])
    return "\n".join(lines)


class SingleFileExporter(Exporter):
    """Tools that open the DiT, the VAE and Qwen3 as separate files."""

    vae_name = ""
    comfy_te = False

    def models(self, job: Any) -> Any:
        from plugins.exporters.models import single_files

        o = opts(job)
        return single_files(str(job.model), job.recipe.model, self.vae_name, o.get("vae"), o.get("text_encoder"),
                            comfy_te=self.comfy_te)
