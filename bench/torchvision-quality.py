#!/usr/bin/python3
"""Reference for bench/default-recipe.sh: torchvision's Faster R-CNN with its defaults (FasterRCNN's
RPN / RoI settings, anchors 32..512, FPN width 256) on a ResNet-18 body trained from scratch with
BatchNorm, the recipe torchvision's detection references use scaled to this data (SGD lr 0.02,
momentum 0.9, weight decay 1e-4, 100-iteration linear warm-up, x0.1 at 2/3 and 11/12 of the
epochs, horizontal flip), batch 4, on the same generated COCO-form data as the native trainer.
Writes the validation detections in COCO results form; the bench evaluates them with the
project's evaluator (equal to pycocotools).
  /usr/bin/python3 bench/torchvision-quality.py <data dir> <epochs> <threads> <seed> <detections.json>
Run with Debian's /usr/bin/python3 (python3-torchvision), not a venv python.
"""
import json, os, random, sys, time
import torch, torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

data, epochs, threads, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
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
backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5, norm_layer=torch.nn.BatchNorm2d)
model = FasterRCNN(backbone, num_classes=len(cats) + 1, min_size=size, max_size=size)

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
