"""The `klein-eval` inference backend: generate every checkpoint x strength x prompt x seed with
one loaded pipeline, score the images (curate.eval_job) and write table, JSON and HTML."""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from curate.errors import KlintError
from curate.eval_job import (IDENTITY_THRESHOLD, PROMPT_SET_VERSION, RATIO_TOLERANCE, EvalJob, best_cell,
                             reference_set, score_images, summarise, write_json)


def _generate(job: EvalJob, pipe, lora: Path | None, strength: float, prompt: str, seed: int):
    from plugins.pulid.backend import generate
    from plugins.pulid.job import InferJob

    ij = InferJob(prompt=prompt, model=job.model, out=job.out, mode=job.mode, refs=list(job.refs[:4]),
                  lora=lora, lora_scale=strength, steps=job.steps, cfg=job.cfg, seed=seed, width=job.size,
                  height=job.size, device=job.device)
    images, _ = generate(ij, pipe)
    return images[0]


def _thumb(path: Path, size: int = 264) -> str:
    from curate.report import thumbnail

    t = thumbnail(path, size)
    return f"data:image/jpeg;base64,{t[0]}" if t else ""


def _fmt(v, nd=3) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def table(cells: list[dict[str, Any]], best: int | None) -> str:
    head = f"{'checkpoint':<28} {'str':>5} {'identity':>9} {'spread':>7} {'faces':>6} {'heads':>6} {'dataset':>7}"
    lines = [head]
    for i, c in enumerate(cells):
        mark = " *" if i == best else ""
        lines.append(f"{c['checkpoint'][:28]:<28} {c['strength']:>5.2f} {_fmt(c['identity_mean']):>9} "
                     f"{_fmt(c['identity_spread']):>7} {c['face_rate']:>6.2f} {_fmt(c['heads_median'], 2):>6} "
                     f"{_fmt(c['heads_reference'], 2):>7}{mark}")
    return "\n".join(lines)


def page(data: dict[str, Any]) -> str:
    """The eval page: the report's page shell and stylesheet (curate.report.page), eval's body."""
    from curate.report import page as report_page
    from curate.report.template import EVAL_CSS

    e = html.escape
    cells, best = data["cells"], data["best"]
    ok = data["passed"]
    verdict = ("A cell passes", "ok") if ok else ("No cell passes", "error")
    why = (f"identity ≥ {data['identity_threshold']} with stature within ±{data['ratio_tolerance']} "
           f"head of the dataset's")
    ref = data["reference_heads"]
    stats = [(len(cells), "cells"), (sum(c["images"] for c in cells), "images"),
             (data["reference_faces"], "reference faces"), (len(ref), "reference full-body"),
             (_fmt(cells[best]["identity_mean"]) if best is not None else "-", "best identity")]
    head = ('<header class="top"><div><h1>klint eval</h1>'
            f"<div class='where'>model <b class='mono'>{e(data['model'])}</b> · prompt set v{e(data['prompt_set'])}"
            f" · {len(data['prompts'])} prompts · seeds {e(', '.join(map(str, data['seeds'])))} · "
            f"{data['steps']} steps</div></div><div class='verdict {verdict[1]}'>{verdict[0]}<small>{e(why)}"
            "</small></div></header><div class='stats'>"
            + "".join(f"<div class='stat'><b>{e(str(n))}</b><span>{e(label)}</span></div>" for n, label in stats)
            + "</div>")
    rows = []
    for i, c in enumerate(cells):
        rows.append(f"<tr{' class=best' if i == best else ''}><td class='mono'>{e(c['checkpoint'])}"
                    f"{' <span class=tag>best</span>' if i == best else ''}</td>"
                    f"<td class='num'>{c['strength']:.2f}</td>"
                    f"<td class='num'>{e(_fmt(c['identity_mean']))}</td><td class='num'>{e(_fmt(c['identity_spread']))}"
                    f"</td><td class='num'>{c['face_rate']:.2f}</td>"
                    f"<td class='num'>{e(_fmt(c['heads_median'], 2))}</td>"
                    f"<td class='num'>{e(_fmt(c['heads_reference'], 2))}</td></tr>")
    table_html = ("<section id='cells'><h2>Checkpoint × strength</h2><div class='sub small'>Identity = 1 − mean "
                  "dlib distance to the references; heads = stature in head heights on full-body prompts, "
                  "against the dataset's own full-body photos.</div><table><thead><tr><th>checkpoint</th>"
                  "<th class='num'>strength</th><th class='num'>identity</th><th class='num'>spread</th>"
                  "<th class='num'>faces</th><th class='num'>heads</th><th class='num'>dataset</th></tr></thead>"
                  f"<tbody>{''.join(rows)}</tbody></table></section>")
    groups = []
    for c in cells:
        figs = "".join(f"<figure><img src='{_thumb(Path(r['image']))}' alt='{e(r.get('prompt', ''))}'>"
                       f"<figcaption>{e(_fmt(r['similarity']))} · {e(_fmt(r['heads'], 2))}</figcaption></figure>"
                       for r in c["rows"])
        groups.append(f"<div class='group'><h3>{e(c['checkpoint'])} <span class='count'>at {c['strength']:.2f}"
                      f"</span></h3><div class='figs'>{figs}</div></div>")
    images = ("<section id='images'><h2>Images <span class='sub small'>identity · heads</span></h2>"
              f"{''.join(groups)}</section>")
    notes = "".join(f"<li>{e(n)}</li>" for n in data["notes"])
    notes_html = f"<section id='notes'><h2>Notes</h2><ul>{notes}</ul></section>" if notes else ""
    return report_page("klint eval", head + table_html + images + notes_html, extra_css=EVAL_CSS, script=None)


def run_cells(job: EvalJob, pipe, refs: dict[str, Any], img_dir: Path) -> list[dict[str, Any]]:
    img_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    for ci, (label, lora, strength) in enumerate(job.cells):
        paths = []
        for pi, prompt in enumerate(job.prompts):
            for seed in job.seeds:
                im = _generate(job, pipe, lora, strength, prompt.text, seed)
                p = img_dir / f"c{ci:02d}_p{pi:02d}_s{seed}.png"
                im.save(p)
                paths.append(p)
        rows = score_images(paths, refs["embeddings"])
        for r, (pi, _) in zip(rows, [(pi, s) for pi in range(len(job.prompts)) for s in job.seeds]):
            r["prompt"] = job.prompts[pi].text
            r["framing"] = job.prompts[pi].framing
            if r["framing"] != "full":
                r["heads"] = None  # proportions count on full-body prompts only
        cell = summarise(rows, refs["heads"], threshold=job.identity_threshold, tolerance=job.ratio_tolerance)
        cell.update(checkpoint=label, lora=str(lora) if lora else None, strength=strength, rows=rows)
        cells.append(cell)
    return cells


class KleinEval:
    name = "klein-eval"

    def run(self, job: EvalJob) -> int:
        from plugins.pulid.backend import _device_dtype, load_pipeline
        from plugins.pulid.job import InferJob

        out = job.out
        if out.exists() and any(out.iterdir()):
            raise KlintError(f"{out}: folder is not empty (klint eval never overwrites earlier results)")
        out.mkdir(parents=True, exist_ok=True)
        notes = []
        if job.model != "tiny" and "base" not in job.model.lower():
            notes.append("generating on a distilled model: at 4 steps, guidance 1, it is the fair preview of a "
                         "LoRA trained on the base model")
        if job.mode == "reference" and not job.holdout:
            notes.append("--mode reference shows the reference photos to the model: identity against those same "
                         "photos flatters it; pass --holdout photos the model never saw")
        device, dtype = _device_dtype(InferJob(prompt="", model=job.model, out=out, device=job.device))
        pipe = load_pipeline(job.model, device, dtype)
        pipe.set_progress_bar_config(disable=True)
        refs = reference_set(job.refs, job.holdout)
        if not refs["embeddings"]:
            notes.append("no face found in the reference photos: identity cannot be scored")
        if not refs["heads"]:
            notes.append("no measurable full-body reference photo: head-to-body ratio shown without comparison")
        cells = run_cells(job, pipe, refs, out / "images")
        best = best_cell(cells)
        data = {"model": job.model, "mode": job.mode, "prompt_set": PROMPT_SET_VERSION,
                "prompts": [p.text for p in job.prompts], "seeds": list(job.seeds), "steps": job.steps,
                "strengths": list(job.strengths), "identity_threshold": job.identity_threshold,
                "ratio_tolerance": job.ratio_tolerance, "references": len(job.refs),
                "reference_faces": len(refs["embeddings"]),
                "identity_reference": "holdout" if job.holdout else "refs", "reference_heads": refs["heads"], "notes": notes,
                "cells": cells, "best": best}
        ok = any(c["identity_ok"] and c["proportions_ok"] for c in cells)
        data["passed"] = ok
        write_json(out / "eval.json", data)
        (out / "eval.html").write_text(page(data), encoding="utf-8")
        data["table"] = table(cells, best)
        self.last = data
        for n in notes:
            print(f"klint: note: {n}", file=sys.stderr)
        return 0 if ok else 1


# ---- during training (`klint train --eval-every N`) -------------------------------------

_train_refs: dict[str, dict[str, Any]] = {}


def train_eval(pipe, transformer, txt, job, out: Path, step: int, steps: int, cfg: float, device, dtype) -> dict:
    """One metrics.jsonl row: the current LoRA (strength 1) on the training prompts, scored
    against the dataset's own photos with the same `summarise` as `klint eval`."""
    import torch

    from curate.eval_job import training_prompts

    key = str(out)
    if key not in _train_refs:
        _train_refs[key] = reference_set([it.image for it in job.items])
    refs = _train_refs[key]
    folder = out / "eval"
    folder.mkdir(exist_ok=True)
    was_training = transformer.training
    transformer.eval()
    pipe.vae.to(device)
    neg = txt[""].unsqueeze(0).to(device, dtype)
    prompts = training_prompts(job.trigger)
    paths = []
    try:
        with torch.no_grad():
            for k, p in enumerate(prompts):
                img = pipe(prompt_embeds=txt[p.text].unsqueeze(0).to(device, dtype), negative_prompt_embeds=neg,
                           height=job.resolution, width=job.resolution, num_inference_steps=steps,
                           guidance_scale=cfg, generator=torch.Generator().manual_seed(job.seed + k),
                           output_type="pil").images[0]
                path = folder / f"step-{step:06d}-{k}.png"
                img.save(path)
                paths.append(path)
    finally:
        pipe.vae.to("cpu")
        transformer.train(was_training)
    rows = score_images(paths, refs["embeddings"])
    for r, p in zip(rows, prompts):
        if p.framing != "full":
            r["heads"] = None
    cell = summarise(rows, refs["heads"], threshold=IDENTITY_THRESHOLD, tolerance=RATIO_TOLERANCE)
    return {"step": step, "eval": {k: cell[k] for k in ("images", "face_rate", "identity_mean", "identity_spread",
                                                         "heads_median", "heads_reference", "heads_delta")}}
