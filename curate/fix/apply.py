"""The only code that writes into a dataset. Every write is atomic; captions are backed up.

A crash (or kill) mid-write leaves either the old file or the new one, never a half file:
we write a temp file in the same folder, fsync it, then `os.replace` it over the target.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import tempfile
import time
from pathlib import Path

from curate.config import Config
from curate.dataset.model import CACHE_DIR, OWN_DIR
from curate.dataset.scan import read_caption
from curate.engine.diagnostic import Diagnostic, Fix, WriteBytes, WriteText
from curate.errors import KlintError

MAX_PASSES = 10


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".klint-tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    atomic_write(path, text.encode("utf-8"), mode)


def is_klint_owned(root: Path, path: Path) -> bool:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return rel.parts[:1] in ((OWN_DIR,), (CACHE_DIR,))


@dataclasses.dataclass
class Writer:
    """Applies edits under one dataset root, backing up each caption once per run."""

    root: Path
    backup_dir: Path | None = None
    written: list[Path] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.backup_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.backup_dir = self.root / CACHE_DIR / "backups" / stamp
        self._backed: set[Path] = set()

    def _backup(self, path: Path) -> None:
        if path in self._backed or not path.exists():
            return
        dest = self.backup_dir / path.resolve().relative_to(self.root.resolve())
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        self._backed.add(path)

    def apply(self, edit: WriteText | WriteBytes) -> None:
        path = Path(edit.path)
        if isinstance(edit, WriteText):
            if path.suffix.lower() not in (".txt", ".toml", ".json", ".yaml", ".yml", ".csv", ".sh"):
                raise KlintError(f"refusing to write text into {path}: klint only edits captions and configs")
            self._backup(path)
            atomic_write_text(path, edit.text)
        else:
            if path.exists() and not is_klint_owned(self.root, path):
                raise KlintError(f"refusing to overwrite {path}: klint never overwrites a user's file")
            atomic_write(path, edit.data)
        self.written.append(path)


@dataclasses.dataclass
class FixReport:
    initial: list[Diagnostic]
    remaining: list[Diagnostic]
    fixed: list[Diagnostic]
    changed: dict[Path, tuple[str, str]]  # path -> (old, new) text
    backup_dir: Path | None
    runaway: bool = False
    created: list[str] = dataclasses.field(default_factory=list)  # derived files (clean crops), dataset-relative

    def diff(self, dataset_display) -> str:
        chunks = []
        for path, (old, new) in sorted(self.changed.items()):
            name = dataset_display(path)
            if old == new:  # same text, new bytes: a BOM / UTF-16 / Latin-1 file rewritten as UTF-8
                chunks.append(f"--- a/{name}\n+++ b/{name}\n# re-encoded as UTF-8 without a byte-order mark\n")
                continue
            chunks.extend(difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True),
                fromfile=f"a/{name}", tofile=f"b/{name}"))
            if chunks and not chunks[-1].endswith("\n"):
                chunks[-1] += "\n\\ No newline at end of file\n"
        return "".join(chunks)


def _pick_fixes(diags: list[Diagnostic], unsafe: bool) -> list[Fix]:
    """At most one fix per target file per pass; the loop picks up the rest."""
    taken: set[str] = set()
    fixes: list[Fix] = []
    for d in diags:
        fix = d.fix
        if fix is None or (fix.applicability == "unsafe" and not unsafe):
            continue
        if not all(isinstance(e, WriteText) for e in fix.edits):
            continue  # file-creating fixes belong to `fix --rebalance`
        if any(t in taken for t in fix.targets()):
            continue
        taken.update(fix.targets())
        fixes.append(fix)
    return fixes


def fix_dataset(root: Path | str, config: Config, *, unsafe: bool = False, write: bool = True,
                use_cache: bool = True, rules: list | None = None) -> FixReport:
    """Lint, apply fixes, re-lint until nothing changes (runaway limit MAX_PASSES)."""
    from curate.engine.registry import all_rules, select_rules
    from curate.engine.runner import lint_dataset

    if rules is None:
        rules = select_rules(all_rules(), config.select, config.ignore, config.extend_select)
    overlay: dict[Path, str] = {}
    originals: dict[Path, tuple[bytes, str]] = {}  # raw bytes (to see re-encodings) and decoded text
    first = lint_dataset(root, config, use_cache=use_cache, overlay=overlay, rules=rules)
    result = first
    seen_states: set[tuple] = set()
    runaway = True
    for _ in range(MAX_PASSES):
        fixes = _pick_fixes(result.diagnostics, unsafe)
        if not fixes:
            runaway = False
            break
        for fix in fixes:
            for edit in fix.edits:
                path = Path(edit.path)
                if path not in originals:
                    raw = path.read_bytes() if path.exists() else b""
                    originals[path] = (raw, read_caption(path)[0] or "" if raw else "")
                overlay[path] = edit.text
        state = tuple(sorted((str(p), t) for p, t in overlay.items()))
        if state in seen_states:  # fixes undo each other: stop rather than loop forever
            break
        seen_states.add(state)
        result = lint_dataset(root, config, use_cache=use_cache, overlay=overlay, rules=rules)
    if runaway:
        overlay.clear()
        result = first
    changed = {p: (originals[p][1], t) for p, t in overlay.items() if originals[p][0] != t.encode("utf-8")}
    writer = None
    if write and changed:
        writer = Writer(first.dataset.root)
        for path, (_, text) in sorted(changed.items()):
            writer.apply(WriteText(str(path), text))
        result = lint_dataset(root, config, use_cache=use_cache, rules=rules)
    created: list[str] = []
    if unsafe and not runaway:
        # file-creating fixes run once, after the captions settled (they change the file set)
        from curate.fix.clean_crop import apply_clean_crops

        created = apply_clean_crops(first.dataset.root, result.diagnostics, write=write)
        if created and write:
            result = lint_dataset(root, config, use_cache=use_cache, rules=rules)
    remaining_keys = {(d.path, d.code, d.message) for d in result.diagnostics}
    fixed = [d for d in first.diagnostics if (d.path, d.code, d.message) not in remaining_keys]
    return FixReport(initial=first.diagnostics, remaining=result.diagnostics, fixed=fixed,
                     changed=changed, backup_dir=writer.backup_dir if writer else None, runaway=runaway,
                     created=created)
