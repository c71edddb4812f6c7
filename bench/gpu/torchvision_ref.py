#!/usr/bin/env python3
"""torchvision's reference for the GPU check (bench/gpu-check.sh, issue #16).

Trains torchvision's `fasterrcnn_resnet50_fpn` (weights=None, weights_backbone=None: BatchNorm, all
layers trainable, like the native `paper-final` run) from scratch on the check's generated COCO data
with the settings the native jobs use (read from <prepared>/<scale>/torchvision.json, written by
bench/gpu/jobs.ts from the same recipe), for warm-up + timed iterations, in fp32 or under bf16
autocast, and reports:
  - training images/s over the timed iterations (each iteration ends with loss.item(), which
    synchronises, as the native trainer's per-iteration progress line does; CUDA synchronised
    before the clock starts and stops);
  - peak memory: torch.cuda.max_memory_allocated over the training loop (CPU: peak RSS);
  - with --latency: batch-1 inference latency on the first validation image (the image the native
    `bench` command uses), fp32, after warm-up forwards; each timed forward ends with the boxes
    copied to the host and a synchronise; median, p90, mean.
Prints one JSON object on stdout (logs on stderr).

Kept equal to the native run: input size (min_size=height, max_size=width: the generated 800x600
images are not resized, padded to multiples of 32), ImageNet normalisation, anchors 32..512 with
ratios 0.5/1/2, RPN 256 samples (half positive), 2000/1000 train and 1000/1000 test proposals, NMS
0.7, RoI 512 samples (a quarter positive), RoIAlign 7x7 with adaptive sampling (sampling_ratio=0;
torchvision's default is 2), a 2fc head of width 1024, 4 classes + background, test score 0.05 /
NMS 0.5 / 100 per image, SGD momentum 0.9, weight decay 1e-4 off for 1-D parameters, gradient
clipping at 35, mmdetection's linear warm-up, no flip or scale jitter.
Known differences, reported in "differences": listed in DIFFERENCES below.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torchvision
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from torchvision.ops import MultiScaleRoIAlign

DIFFERENCES = [
    "images are decoded once before the loop (the native trainer decodes JPEGs in its loader threads during training)",
    "torchvision's FPN adds a parameter-free max-pool level for the RPN (5 RPN levels, anchors 32..512); "
    "native fpn(P1-P4) has 4 RPN levels (anchors 32..256)",
    "torchvision's RoIAlign in MultiScaleRoIAlign uses aligned=False (native: aligned=True)",
    "losses: torchvision uses smooth L1 (beta 1/9) for box regression, native L1",
    "torchvision's transform resizes every image with an interpolate call even at scale 1 (800x600 in, 800x600 out)",
    "native peakMemoryMB also covers the final evaluation on the validation split (fp32); torchvision's covers the training loop only",
]


def log(*a):
    print("[torchvision_ref]", *a, file=sys.stderr, flush=True)


def percentile(xs, q):
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def load_split(data, split):
    ann = json.load(open(os.path.join(data, "annotations", f"instances_{split}.json")))
    cats = sorted(c["id"] for c in ann["categories"])
    boxes = {}
    for a in ann["annotations"]:
        x, y, w, h = a["bbox"]
        boxes.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], cats.index(a["category_id"]) + 1))
    return ann["images"], boxes


def read_rgb(path):
    return torchvision.io.decode_image(torchvision.io.read_file(path), mode=torchvision.io.ImageReadMode.RGB)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="COCO-form data set (annotations/, train/, val/)")
    ap.add_argument("--settings", required=True, help="torchvision.json written by bench/gpu/jobs.ts")
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--latency", action="store_true", help="also time batch-1 inference (fp32) after training")
    args = ap.parse_args()
    s = json.load(open(args.settings))
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = fasterrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=s["numClasses"] + 1,
        min_size=s["height"],
        max_size=s["width"],
        rpn_pre_nms_top_n_train=s["rpn"]["trainPreNms"],
        rpn_post_nms_top_n_train=s["rpn"]["trainPostNms"],
        rpn_pre_nms_top_n_test=s["rpn"]["testPreNms"],
        rpn_post_nms_top_n_test=s["rpn"]["testPostNms"],
        rpn_nms_thresh=s["rpn"]["nmsIou"],
        rpn_batch_size_per_image=s["rpn"]["samplesPerImage"],
        rpn_positive_fraction=s["rpn"]["positiveFraction"],
        box_batch_size_per_image=s["roi"]["samplesPerImage"],
        box_positive_fraction=s["roi"]["positiveFraction"],
        box_score_thresh=s["test"]["scoreThreshold"],
        box_nms_thresh=s["test"]["nmsIou"],
        box_detections_per_img=s["test"]["maxPerImage"],
    )
    # adaptive sampling like the native RoIAlign (mmdetection's sampling_ratio=0)
    model.roi_heads.box_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=0)
    assert model.roi_heads.box_head.fc6.out_features == s["fcWidth"], "torchvision's TwoMLPHead width is not the recipe's fcWidth"
    params = sum(p.numel() for p in model.parameters())
    model.to(dev)

    images, boxes = load_split(args.data, "train")
    images = [im for im in images if im["id"] in boxes]
    log(f"decoding {len(images)} training images")
    decoded = []
    for im in images:
        b = boxes[im["id"]]
        decoded.append((read_rgb(os.path.join(args.data, "train", im["file_name"])),
                        torch.tensor([x[0] for x in b], dtype=torch.float32),
                        torch.tensor([x[1] for x in b], dtype=torch.int64)))

    opt_cfg = s["optimizer"]
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if opt_cfg["noDecayOnNormAndBias"] and p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": opt_cfg["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=opt_cfg["lr"], momentum=opt_cfg["momentum"])
    warm_iters, warm_ratio = s["warmup"]["iterations"], s["warmup"]["ratio"]

    def lr_at(i):  # mmdetection's linear warm-up, as the native trainer's learningRate()
        if i < warm_iters:
            return opt_cfg["lr"] * (warm_ratio + (1 - warm_ratio) * i / warm_iters)
        return opt_cfg["lr"]

    batch, warm, timed = s["batch"], s["warmupIterations"], s["timedIterations"]
    model.train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
    losses_seen = []
    t0 = None
    log(f"training {warm} + {timed} iterations, batch {batch}, {args.precision}, {dev}")
    for it in range(warm + timed):
        if it == warm:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        items = [decoded[(it * batch + k) % len(decoded)] for k in range(batch)]
        imgs = [x[0].to(dev, non_blocking=True).float().div_(255) for x in items]
        targets = [{"boxes": x[1].to(dev), "labels": x[2].to(dev)} for x in items]
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss_dict = model(imgs, targets)
            loss = sum(loss_dict.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["clipGradNorm"])
        opt.step()
        losses_seen.append(loss.item())  # synchronises, like the native trainer's per-iteration progress line
    if cuda:
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0
    result = {
        "side": "torchvision",
        "model": "fasterrcnn_resnet50_fpn",
        "precision": args.precision,
        "device": str(dev),
        "params": params,
        "batch": batch,
        "warmupIterations": warm,
        "timedIterations": timed,
        "trainImagesPerSec": timed * batch / train_s,
        "timedSeconds": train_s,
        "firstLoss": losses_seen[0],
        "lastLoss": losses_seen[-1],
        "finiteLosses": all(x == x and abs(x) != float("inf") for x in losses_seen),
        "peakMemoryMB": (torch.cuda.max_memory_allocated(dev) / 2**20) if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peakMemoryKind": "cuda max_memory_allocated (training loop)" if cuda else "process peak RSS",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cudnnBenchmark": torch.backends.cudnn.benchmark,
        "tf32": {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32},
        "differences": DIFFERENCES,
    }

    if args.latency:
        val_images, _ = load_split(args.data, "val")
        first = val_images[0]
        x = read_rgb(os.path.join(args.data, "val", first["file_name"])).to(dev).float().div_(255)
        model.eval()
        if cuda:
            torch.cuda.synchronize()
        with torch.inference_mode():
            for _ in range(s["benchWarmup"]):
                model([x])
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(dev)
            ms, dets = [], []
            for _ in range(s["benchIterations"]):
                t = time.perf_counter()
                out = model([x])
                out[0]["boxes"].cpu()  # post-processing done and results on the host, as the native bench
                if cuda:
                    torch.cuda.synchronize()
                ms.append((time.perf_counter() - t) * 1000)
                dets.append(int(out[0]["boxes"].shape[0]))
        result["latency"] = {
            "input": os.path.join("val", first["file_name"]),
            "warmup": s["benchWarmup"],
            "iterations": s["benchIterations"],
            "medianMs": percentile(ms, 0.5),
            "p90Ms": percentile(ms, 0.9),
            "p10Ms": percentile(ms, 0.1),
            "meanMs": sum(ms) / len(ms),
            "detectionsPerImage": dets[-1],
            "peakMemoryMB": (torch.cuda.max_memory_allocated(dev) / 2**20) if cuda else None,
        }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
