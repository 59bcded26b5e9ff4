"""The only code that writes into a dataset. Every write is atomic; captions are backed up.

A crash (or kill) mid-write leaves either the old file or the new one, never a half file:
we write a temp file in the same folder, fsync it, then `os.replace` it over the target.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import secrets
import tempfile
import time
from pathlib import Path

from curate.config import Config
from curate.dataset.model import CACHE_DIR, OWN_DIR
from curate.dataset.scan import decode_caption
from curate.engine.diagnostic import Diagnostic, Fix, WriteBytes, WriteText
from curate.errors import KlintError, os_error

MAX_PASSES = 10


_UNCHECKED = object()
TEXT_SUFFIXES = (".txt", ".toml", ".json", ".yaml", ".yml", ".csv", ".sh")


class Changed(Exception):
    """The file no longer holds what klint read: someone edited it while klint ran."""


def _current(path: Path) -> bytes | None:
    from curate.dataset.safeio import read_regular

    try:
        return read_regular(path, 1 << 30)
    except FileNotFoundError:
        return None


def atomic_write(path: Path, data: bytes, mode: int | None = None, expect=_UNCHECKED) -> None:
    """Temp file, fsync, rename. With `expect` (bytes, or None for "must not exist") the target
    is compared right before the rename and left alone (Changed) if it moved on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".klint-tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if expect is not _UNCHECKED and _current(path) != expect:
            raise Changed(str(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str, expect=_UNCHECKED) -> None:
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    atomic_write(path, text.encode("utf-8"), mode, expect)


def is_klint_owned(root: Path, path: Path) -> bool:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return rel.parts[:1] in ((OWN_DIR,), (CACHE_DIR,))


def _new_backup_dir(root: Path) -> Path:
    # one folder per run, even for two runs in the same second: a run's backups are its own
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / CACHE_DIR / "backups" / f"{stamp}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclasses.dataclass
class Writer:
    """Applies edits under one dataset root, backing up each caption once per run."""

    root: Path
    backup_dir: Path | None = None
    written: list[Path] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.backup_dir is None:
            self.backup_dir = _new_backup_dir(self.root)
        self._backed: set[Path] = set()

    def check(self, edit: WriteText | WriteBytes) -> None:
        """Raise (before anything is written) if this edit would leave the dataset or hit a user's file."""
        from curate.dataset.safeio import inside

        path = Path(edit.path)
        if not inside(self.root, path.parent) or (path.is_symlink() and not inside(self.root, path)):
            raise KlintError(f"refusing to write {path}: it leads outside the dataset {self.root}")
        if isinstance(edit, WriteText):
            if path.suffix.lower() not in TEXT_SUFFIXES:
                raise KlintError(f"refusing to write text into {path}: klint only edits captions and configs")
        elif path.is_symlink() or (path.exists() and not is_klint_owned(self.root, path)):
            raise KlintError(f"refusing to overwrite {path}: klint never overwrites a user's file")

    def _backup(self, path: Path, data: bytes | None) -> None:
        if path in self._backed:
            return
        if data is None:
            if not path.exists():
                return
            data = _current(path)
        dest = self.backup_dir / path.parent.resolve().relative_to(self.root.resolve()) / path.name
        try:
            atomic_write(dest, data)
        except OSError as exc:
            raise os_error(exc, dest, "cannot write the backup") from None
        self._backed.add(path)

    def apply(self, edit: WriteText | WriteBytes, expect=_UNCHECKED) -> bool:
        """Write one edit; False when the file changed since `expect` was read (left alone)."""
        self.check(edit)
        path = Path(edit.path)
        try:
            if isinstance(edit, WriteText):
                if expect is not _UNCHECKED and _current(path) != expect:
                    return False
                self._backup(path, None if expect is _UNCHECKED else expect)
                atomic_write_text(path, edit.text, expect)
            else:
                atomic_write(path, edit.data, expect=expect)
        except Changed:
            return False
        except OSError as exc:
            raise os_error(exc, path) from None
        self.written.append(path)
        return True


@dataclasses.dataclass
class FixReport:
    initial: list[Diagnostic]
    remaining: list[Diagnostic]
    fixed: list[Diagnostic]
    changed: dict[Path, tuple[str, str]]  # path -> (old, new) text
    backup_dir: Path | None
    runaway: bool = False
    created: list[str] = dataclasses.field(default_factory=list)  # derived files (clean crops), dataset-relative
    skipped: list[Path] = dataclasses.field(default_factory=list)  # edited by someone else meanwhile

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
    """Lint, apply fixes, re-lint until nothing changes (runaway limit MAX_PASSES).

    Writing runs hold the dataset's lock from the first lint to the last write, check every
    edit before writing any, and write a caption only if it still holds the bytes the first
    lint read (an edit made meanwhile is kept and reported in `skipped`).
    """
    if not write:
        return _fix(root, config, unsafe=unsafe, write=False, use_cache=use_cache, rules=rules)
    from curate.dataset.lock import dataset_lock

    with dataset_lock(root, "klint fix"):
        return _fix(root, config, unsafe=unsafe, write=True, use_cache=use_cache, rules=rules)


def _fix(root, config, *, unsafe, write, use_cache, rules) -> FixReport:
    from curate.engine.registry import all_rules, select_rules
    from curate.engine.runner import lint_dataset

    if rules is None:
        rules = select_rules(all_rules(), config.select, config.ignore, config.extend_select)
    overlay: dict[Path, str] = {}
    originals: dict[Path, tuple[bytes | None, str]] = {}  # raw bytes as first read (None: absent), decoded text
    first = lint_dataset(root, config, use_cache=use_cache, overlay=overlay, rules=rules)
    if write and first.dataset.leftovers:
        from curate.dataset.lock import remove_leftovers

        remove_leftovers(first.dataset.leftovers)
    read_at_start = {it.caption: it.caption_raw for it in first.dataset.items if it.caption is not None}
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
                    raw = read_at_start[path] if path in read_at_start else (
                        path.read_bytes() if path.is_file() else None)
                    originals[path] = (raw, decode_caption(raw)[0] if raw else "")
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
    skipped: list[Path] = []
    if write and changed:
        edits = [WriteText(str(path), text) for path, (_, text) in sorted(changed.items())]
        checker = Writer(first.dataset.root, backup_dir=Path("/nonexistent"))
        for edit in edits:  # everything is checked before anything is written
            checker.check(edit)
        writer = Writer(first.dataset.root)
        for edit in edits:
            if not writer.apply(edit, expect=originals[Path(edit.path)][0]):
                skipped.append(Path(edit.path))
        for path in skipped:
            del changed[path]
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
                     changed=changed, backup_dir=writer.backup_dir if writer and writer.written else None,
                     runaway=runaway, skipped=skipped, created=created)
