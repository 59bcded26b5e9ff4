"""Shared machinery for exporters: repeat plan, dataset layout, run.sh, finding and streaming the tool.

An exporter never writes outside `--out` and never moves a user's file: images are symlinked
(or copied/hard-linked), captions are written as new files inside `--out`.
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
LINK_MODES = ("symlink", "copy", "hardlink")
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

def base_repeats(recipe_repeats: int, n_images: int) -> int:
    """Recipe repeats scaled so an epoch stays near recipe_repeats x 10 samples whatever the image count."""
    if n_images <= 0:
        return recipe_repeats
    return max(1, round(recipe_repeats * REFERENCE_IMAGES / n_images))


def plan_repeats(items: Sequence[Any], recipe_repeats: int) -> dict[str, int]:
    """Per-image repeat count: the rebalance multiplier (item.repeats) times the scaled base."""
    base = base_repeats(recipe_repeats, len(items))
    return {item_get(it, "rel"): base * max(1, int(item_get(it, "repeats", 1) or 1)) for it in items}


def epochs_for(steps: int, samples_per_epoch: int, batch: int = 1, accumulation: int = 1) -> int:
    """Whole epochs covering at least `steps` optimizer steps (epoch-based tools cannot stop mid-epoch)."""
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
        if mode == "hardlink":
            os.link(src, dest)
        else:
            os.symlink(src.resolve(), dest)
    except OSError:  # filesystems without links (FAT, some Windows setups): copying is still safe
        shutil.copy2(src, dest)


def materialize(items: Sequence[Any], repeats: dict[str, int], out: Path, subdir: str, trigger: str | None,
                mode: str = "symlink") -> list[Group]:
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

@dataclasses.dataclass(frozen=True)
class ModelFiles:
    dit: str
    vae: str
    text_encoder: str


TEXT_ENCODER_FILE = {"klein-4b": "qwen_3_4b.safetensors", "klein-9b": "qwen_3_8b.safetensors"}


def single_file_components(model: str, variant: str, vae_name: str, o: dict[str, Any]) -> ModelFiles:
    """--model is the base DiT file; the VAE and Qwen3 files default to ComfyUI's names and folders.

    `models/diffusion_models/x.safetensors` -> `models/vae/<vae_name>`, `models/text_encoders/qwen_3_*`;
    any other folder -> siblings of the model file. `vae` / `text_encoder` options override.
    """
    p = Path(model)
    if p.parent.name == "diffusion_models":
        vae_dir, te_dir = p.parent.parent / "vae", p.parent.parent / "text_encoders"
    else:
        vae_dir = te_dir = p.parent
    vae = o.get("vae") or str(vae_dir / vae_name)
    te = o.get("text_encoder") or str(te_dir / TEXT_ENCODER_FILE[variant])
    return ModelFiles(dit=model, vae=str(vae), text_encoder=str(te))


def check_model_paths(paths: dict[str, str], dry_run: bool) -> None:
    if dry_run:
        return
    for what, path in paths.items():
        if not Path(path).exists():
            raise KlintError(f"{what} {path} does not exist on this machine "
                             "(pass --dry-run to prepare a job for another machine)")


def model_warnings(model: str, variant: str) -> list[str]:
    """Cheap name checks: the seed's two model mistakes (distilled weights, wrong size)."""
    name = Path(model).name.lower()
    notes = []
    if "klein" in name and "base" not in name:
        notes.append(f"{Path(model).name} looks like a distilled Klein checkpoint; train the base model "
                     "(distilled training gives grey blocks and generic faces)")
    other = "4b" if variant == "klein-9b" else "9b"
    if re.search(rf"(^|[^0-9]){other}([^0-9]|$)", name):
        notes.append(f"{Path(model).name} looks like a {other.upper()} checkpoint but the recipe is {variant}")
    return notes


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

@dataclasses.dataclass
class Export:
    """What an exporter's `write` sees: the job, resolved numbers and the laid-out groups."""

    job: Any
    out: Path
    recipe: Any
    name: str
    trigger: str | None
    resolution: int
    groups: list[Group]
    stage2_groups: list[Group]
    tool_dir: str | None
    warnings: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)

    @property
    def variant(self) -> str:
        return self.recipe.model

    def write(self, rel: str, text: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.files.append(rel)


class Exporter:
    """Base for the tool exporters: subclasses set `name`, `tool` and implement `write(ex) -> commands`."""

    name = ""
    tool: ToolSpec
    stage2_expressible = True

    def write(self, ex: Export) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate(self, job: Any) -> None:
        """Refuse what the tool cannot express, before anything is written."""

    def model_paths(self, job: Any, o: dict[str, Any]) -> dict[str, str]:
        """Paths that must exist on this machine unless --dry-run."""
        return {"--model": str(job.model)}

    def run(self, job: Any) -> int:
        o = opts(job)
        recipe = job.recipe
        check_recipe(recipe)
        if not str(getattr(job, "model", "") or "").strip():
            raise KlintError(f"--model PATH is required for {self.name} (the base model on the training machine)")
        dry_run = bool(getattr(job, "dry_run", False))
        if dry_run and o.get("run"):
            raise KlintError("--dry-run and --run cannot be combined")
        self.validate(job)
        check_model_paths(self.model_paths(job, o), dry_run)
        tool_dir = None
        if o.get("run"):
            tool_dir = str(find_tool(self.tool, o.get("tool_path")))
        elif o.get("tool_path"):
            tool_dir = str(Path(o["tool_path"]).expanduser().resolve())

        items = [it for it in job.items if item_get(it, "image") is not None]
        if not items:
            raise KlintError("no captioned images to train on")
        out = out_dir(job)
        prepare_out(out, job.dataset_root)
        repeats = plan_repeats(items, recipe.repeats)
        trigger = getattr(job, "trigger", None)
        mode = o.get("link", "symlink")
        groups = materialize(items, repeats, out, "dataset", trigger, mode)
        stage2: list[Group] = []
        if getattr(job, "two_stage", False):
            full = [it for it in items if is_full_body(it)]
            if not full:
                raise KlintError("--two-stage needs full-body images for stage 2 and none is marked full-body "
                                 "(framing comes from the pose analysis: lint with it enabled)")
            stage2 = materialize(full, repeats, out, "dataset_stage2", trigger, mode)
        label = safe_component(trigger or Path(job.dataset_root).resolve().name)
        ex = Export(job=job, out=out, recipe=recipe, name=f"{label}_{recipe.model.replace('-', '')}",
                    trigger=trigger, resolution=int(getattr(job, "resolution", None) or recipe.resolution),
                    groups=groups, stage2_groups=stage2, tool_dir=tool_dir,
                    warnings=model_warnings(str(job.model), recipe.model))
        commands = self.write(ex)
        script = write_script(out, self.tool, tool_dir, commands)
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
                   f"{samples(ex.groups)} samples per epoch)")
        for rel in ex.files:
            click.echo(f"  {rel}")
        click.echo(f"commands ({script.name}):")
        for c in commands:
            if c and not c.startswith("#"):
                click.echo(f"  {c}")


class SingleFileExporter(Exporter):
    """Tools that take the base DiT as one file, with the VAE and Qwen3 files beside it by default."""

    vae_name = ""

    def components(self, job: Any):
        return single_file_components(str(job.model), job.recipe.model, self.vae_name, opts(job))

    def model_paths(self, job: Any, o: dict[str, Any]) -> dict[str, str]:
        m = self.components(job)
        return {"--model": m.dit, "VAE": m.vae, "text encoder": m.text_encoder}
