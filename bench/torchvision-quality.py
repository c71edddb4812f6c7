#!/usr/bin/python3
"""Reference for bench/default-recipe.sh: torchvision's Faster R-CNN with its defaults (FasterRCNN's
RPN / RoI settings, anchors 32..512, FPN width 256) on a ResNet-18 body trained from scratch with
BatchNorm, the recipe torchvision's detection references use scaled to this data (SGD lr 0.02,
momentum 0.9, weight decay 1e-4, 100-iteration linear warm-up, x0.1 at 2/3 and 11/12 of the
epochs, horizontal flip), batch 4, on the same generated COCO-form data as the native trainer.
Writes the validation detections in COCO results form; the bench evaluates them with the
project's evaluator (equal to pycocotools).
  /usr/bin/python3 bench/torchvision-quality.py <data dir> <epochs> <threads> <seed> <detections.json> [model]
model: `default` (torchvision's Faster R-CNN as above) or `native`: the same training recipe on the
native bench's model instead (bench/default-recipe.sh's middle column): FPN width 64 on C2-C5
without the extra max-pool level (anchors 32..256), a 256-wide two-FC head, 128 RPN samples and 128
RoIs per image, 600 / 300 training and 300 / 100 test proposals (pre-NMS counts per level in both),
as `128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc` with toy-train. The positive fractions stay
torchvision's (half the RPN samples, a quarter of the RoIs): they are part of its recipe.
Run with Debian's /usr/bin/python3 (python3-torchvision), not a venv python.
"""
import json, os, random, sys, time
import torch, torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

data, epochs, threads, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
model_kind = sys.argv[6] if len(sys.argv) > 6 else "default"
if model_kind not in ("default", "native"):
    sys.exit(f"bench/torchvision-quality.py: model must be default or native, not {model_kind!r}")
torch.set_num_threads(threads)
torch.manual_seed(seed)
random.seed(seed)

def split(name):
    ann = json.load(open(os.path.join(data, "annotations", f"instances_{name}.json")))
    boxes = {}
    for a in ann["annotations"]:
        x, y, w, h = a["bbox"]
        boxes.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], a["category_id"]))
    return ann, boxes

train, train_boxes = split("train")
val, _ = split("val")
cats = sorted(c["id"] for c in train["categories"])
size = max(train["images"][0]["width"], train["images"][0]["height"])
if model_kind == "default":
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5, norm_layer=torch.nn.BatchNorm2d)
    model = FasterRCNN(backbone, num_classes=len(cats) + 1, min_size=size, max_size=size)
else:
    width, fc = 64, 256

    class NoExtraLevel(ExtraFPNBlock):  # BackboneWithFPN adds a max-pool level when given None
        def forward(self, results, x, names):
            return results, names

    body = torchvision.models.resnet18(weights=None, norm_layer=torch.nn.BatchNorm2d)
    backbone = BackboneWithFPN(body, {f"layer{k}": str(k - 1) for k in range(1, 5)}, [64, 128, 256, 512], width, extra_blocks=NoExtraLevel())
    model = FasterRCNN(
        backbone, num_classes=None, min_size=size, max_size=size,
        rpn_anchor_generator=AnchorGenerator(((32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 4),
        rpn_batch_size_per_image=128, rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100, box_batch_size_per_image=128,
        box_head=TwoMLPHead(width * 7 * 7, fc), box_predictor=FastRCNNPredictor(fc, len(cats) + 1))

imgs = [i for i in train["images"] if i["id"] in train_boxes]
def load(i, flip):
    t = torchvision.io.read_image(os.path.join(data, "train", i["file_name"]), torchvision.io.ImageReadMode.RGB).float() / 255
    b = torch.tensor([x[0] for x in train_boxes[i["id"]]], dtype=torch.float32)
    if flip:
        t = t.flip(-1)
        b = torch.stack([t.shape[-1] - b[:, 2], b[:, 1], t.shape[-1] - b[:, 0], b[:, 3]], 1)
    return t, {"boxes": b, "labels": torch.tensor([cats.index(x[1]) + 1 for x in train_boxes[i["id"]]])}

batch = 4
per_epoch = len(imgs) // batch
total = per_epoch * epochs
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
milestones = [round(total * 2 / 3), round(total * 11 / 12)]
def lr_at(it):
    lr = 0.02 * (0.1 ** sum(it >= m for m in milestones))
    return lr * (0.001 + (1 - 0.001) * it / 100) if it < 100 else lr
t0 = time.perf_counter()
it = 0
model.train()
for ep in range(epochs):
    order = list(range(len(imgs)))
    random.shuffle(order)
    for k in range(per_epoch):
        items = [load(imgs[j], random.random() < 0.5) for j in order[k * batch:(k + 1) * batch]]
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        losses = model([x[0] for x in items], [x[1] for x in items])
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
    print(f"epoch {ep + 1}/{epochs} loss {loss.item():.3f} {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)

model.eval()
dets = []
with torch.no_grad():
    for i in val["images"]:
        t = torchvision.io.read_image(os.path.join(data, "val", i["file_name"]), torchvision.io.ImageReadMode.RGB).float() / 255
        r = model([t])[0]
        for b, s, l in zip(r["boxes"].tolist(), r["scores"].tolist(), r["labels"].tolist()):
            dets.append({"image_id": i["id"], "category_id": cats[l - 1], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
json.dump(dets, open(out, "w"))
print(json.dumps({"iterations": total, "trainSeconds": time.perf_counter() - t0, "detections": len(dets)}))
