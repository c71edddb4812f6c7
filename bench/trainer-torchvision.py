#!/usr/bin/python3
"""Reference for bench/trainer-bench.sh: torchvision 0.14's Python Faster R-CNN with the same
architecture as the native trainer's `128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc` (ResNet-18 with
GroupNorm(32), FPN width 64 on the four stages, 2fc head of width FC, ROIS sampled RoIs per
image), trained from scratch on the same shapes data with the same batch, threads and input
size. Prints one JSON line: training images/s, batch-1 inference latency (median ms), peak RSS.
Run with Debian's /usr/bin/python3 (torch 1.13 + torchvision 0.14), not the pyenv python3.
"""
import json, os, resource, sys, time
import torch, torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import misc as misc_nn_ops

data, iters, batch, threads, fc, rois = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
backbone_name = sys.argv[7] if len(sys.argv) > 7 else "resnet18"
torch.set_num_threads(threads)
torch.manual_seed(0)
# the trainer's GroupNorm rule: the largest group count <= 32 dividing the channels (32 for ResNet-18)
gn = lambda c: torch.nn.GroupNorm(max(g for g in range(1, 33) if c % g == 0), c)
if backbone_name == "mobilenet_v2":
    # torchvision's MobileNetV2 features; the stage outputs the trainer's FPN takes (strides 4..32):
    # features.3 (24 ch), .6 (32), .13 (96), .17 (320); features.18 (the 1x1 to 1280) is unused
    body = torchvision.models.mobilenet_v2(weights=None, norm_layer=gn).features[:18]
    backbone = BackboneWithFPN(body, {"3": "0", "6": "1", "13": "2", "17": "3"}, [24, 32, 96, 320], 64)
else:
    body = torchvision.models.resnet18(weights=None, norm_layer=gn)
    backbone = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}, [64, 128, 256, 512], 64)
anchors = AnchorGenerator(sizes=((32,), (64,), (128,), (256,), (512,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5)
model = FasterRCNN(backbone, num_classes=5, min_size=128, max_size=128, rpn_anchor_generator=anchors,
                   rpn_batch_size_per_image=128, box_batch_size_per_image=rois, rpn_pre_nms_top_n_train=600,
                   rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100)
model.roi_heads.box_head = torchvision.models.detection.faster_rcnn.TwoMLPHead(64 * 7 * 7, fc)
model.roi_heads.box_predictor = torchvision.models.detection.faster_rcnn.FastRCNNPredictor(fc, 5)

ann = json.load(open(os.path.join(data, "annotations", "instances_train.json")))
cats = sorted(c["id"] for c in ann["categories"])
boxes = {}
for a in ann["annotations"]:
    x, y, w, h = a["bbox"]
    boxes.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], cats.index(a["category_id"]) + 1))
imgs = [i for i in ann["images"] if i["id"] in boxes]

def load(i):
    t = torchvision.io.read_image(os.path.join(data, "train", i["file_name"]), torchvision.io.ImageReadMode.RGB).float() / 255
    b = boxes[i["id"]]
    return t, {"boxes": torch.tensor([x[0] for x in b], dtype=torch.float32), "labels": torch.tensor([x[1] for x in b])}

opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
model.train()
warm = 3
for it in range(iters + warm):
    if it == warm:
        t0 = time.perf_counter()
    batch_items = [load(imgs[(it * batch + k) % len(imgs)]) for k in range(batch)]
    losses = model([b[0] for b in batch_items], [b[1] for b in batch_items])
    loss = sum(losses.values())
    opt.zero_grad()
    loss.backward()
    opt.step()
train_ips = iters * batch / (time.perf_counter() - t0)

model.eval()
x = torch.rand(3, 128, 128)
with torch.no_grad():
    for _ in range(5):
        model([x])
    ms = []
    for _ in range(30):
        s = time.perf_counter()
        model([x])
        ms.append((time.perf_counter() - s) * 1000)
ms.sort()
print(json.dumps({"trainImagesPerSec": train_ips, "medianMs": ms[len(ms) // 2], "peakMemoryMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
