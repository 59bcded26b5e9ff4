"""Head-to-body ratio on the labelled real photos: distribution of full-body statures and exclusions.

Run: KLINT_TEST_PHOTOS=/work/shared/photos python benchmarks/eval_proportions.py
"""
import os
import csv, sys
from pathlib import Path
from curate.analysis.proportions import detect_poses, measure_poses, summary
rows=[r for r in csv.DictReader(open(Path(__file__).resolve().parents[1] / 'tests' / 'data' / 'framing_labels.csv')) if r['framing'] in ('full','half')]
root=Path(os.environ.get('KLINT_TEST_PHOTOS', '../shared/photos'))
paths=[root/r['path'] for r in rows]
res=measure_poses(detect_poses(paths))
for r,m in zip(rows,res):
    print(r['framing'], m['heads'], m['reason'], r['path'][-40:], '|', r['notes'][:40])
full=[m['heads'] for r,m in zip(rows,res) if r['framing']=='full']
print('full', summary(full), 'excluded', sum(1 for r,m in zip(rows,res) if r['framing']=='full' and m['heads'] is None), 'of', len(full))
print('half measured', sum(1 for r,m in zip(rows,res) if r['framing']=='half' and m['heads'] is not None))
