"""Test oracle: runs pycocotools COCOeval (bbox) on many cases in one process.

usage: .venv/bin/python test/support/pycocotools_eval.py <manifest.json>
manifest: [{"gt": <instances.json>, "dets": <results.json>}, ...]
prints one JSON object per case on stdout: {"stats": [12 floats], "perClass": {catId: AP or null}}
pycocotools' own prints go to stderr.
"""
import contextlib
import json
import sys

try:
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError as e:  # the jest test turns this into a failure telling to run scripts/setup.sh
    print(json.dumps({"error": f"pycocotools not importable: {e}"}))
    sys.exit(3)


def evaluate(gt_file, det_file):
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(gt_file)
        with open(det_file) as f:
            dets = json.load(f)
        if dets:
            dt = gt.loadRes(dets)
        else:
            # loadRes cannot take an empty list (it reads anns[0]); build the empty result set directly
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]), "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = {}
    prec = ev.eval["precision"]  # T x R x K x A x M
    for k, cat_id in enumerate(ev.params.catIds):
        p = prec[:, :, k, 0, 2]
        per_class[str(cat_id)] = float(np.mean(p[p > -1])) if (p > -1).any() else None
    return {"stats": [float(s) for s in ev.stats], "perClass": per_class}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for case in cases:
        print(json.dumps(evaluate(case["gt"], case["dets"])), flush=True)


if __name__ == "__main__":
    main()
