#!/usr/bin/python3
"""Test oracle for the trainer's torchvision weight import (native/src/weights.cpp).

Run with Debian's python3-torch / python3-torchvision (/usr/bin/python3); no download.

  write --out DIR --archs resnet18,resnet50 [--images N] [--seed S]
      For each arch: a randomly initialised torchvision model whose BatchNorm statistics are
      calibrated on random inputs (so eval-mode activations stay O(1) and the logits are
      meaningful), saved as DIR/<arch>.pth (torch.save of its state_dict, the distributed format)
      and DIR/<arch>.safetensors (written by hand below: Debian has no python3-safetensors).
      With --images N: N generated PNGs of several sizes in DIR/images, and DIR/reference.json with
      each arch's top-5 classes and logits per image, computed by torchvision on the decoded uint8
      tensor (T.PILToTensor) with Resize(256, antialias=True), CenterCrop(224),
      ConvertImageDtype(float), Normalize(ImageNet mean, std).
  keys --arch A
      Print the state_dict's keys and shapes as JSON (for mapping checks).
  skeleton --arch A --out F
      torch.save of the state_dict with every tensor a zero broadcast to its real shape (stride 0,
      one element stored): the distributed .pth format with torchvision's names and shapes in a
      few hundred kB (resnet101: 184 kB instead of 170 MB), for checks of names and shapes;
      prints the keys and shapes as `keys` does.
  load --arch A --file F [--num-classes K]
      Load F (.pth with torch.load, or .safetensors) into torchvision's model with strict=True;
      print {"ok": true, "tensors": n}.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.float64: 'F64', torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8'}
NP = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64, 'I64': np.int64, 'I32': np.int32, 'U8': np.uint8}


def write_safetensors(path, sd):
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        t = t.detach().cpu().contiguous()
        b = t.numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, rec in header.items():
        if name == '__metadata__':
            continue
        b, e = rec['data_offsets']
        arr = np.frombuffer(data[base + b:base + e], dtype=NP[rec['dtype']]).reshape(rec['shape'])
        out[name] = torch.from_numpy(arr.copy())
    return out


def build(arch, num_classes=1000):
    if arch == 'resnext101_32x4d':  # not in torchvision's zoo; torchvision's ResNet class, torchvision's naming
        from torchvision.models.resnet import Bottleneck, ResNet
        return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4, num_classes=num_classes)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def make_model(arch, seed, num_classes=1000):
    torch.manual_seed(seed)
    m = build(arch, num_classes)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.1)
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average over the calibration batches
        m.train()
        for _ in range(2):
            m(torch.randn(4, 3, 128, 128))
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = 0.1
        if hasattr(m, 'fc'):
            m.fc.bias.normal_(0, 0.5)
    return m.eval()


def write_images(folder, n, seed):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [(300, 240), (200, 333), (480, 360), (256, 256), (231, 257), (640, 300)]
    files = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            fx, fy, ph = rng.uniform(0.01, 0.08), rng.uniform(0.01, 0.08), rng.uniform(0, 6.3)
            img[..., c] = 127 + 100 * np.sin(fx * xx + ph) * np.cos(fy * yy)
        for _ in range(4):  # a few flat rectangles: sharp edges for the antialias filter
            x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
            img[y0:y0 + rng.integers(10, 80), x0:x0 + rng.integers(10, 80)] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 12, img.shape)
        name = f'img_{i:02d}_{w}x{h}.png'
        Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), 'RGB').save(os.path.join(folder, name))
        files.append(name)
    return sorted(files)


def reference(model, folder, files, top=5):
    from PIL import Image
    tf = T.Compose([T.Resize(256, antialias=True), T.CenterCrop(224), T.ConvertImageDtype(torch.float), T.Normalize(MEAN, STD)])
    out = {}
    with torch.no_grad():
        for f in files:
            x = tf(T.PILToTensor()(Image.open(os.path.join(folder, f)).convert('RGB')))
            logits = model(x.unsqueeze(0))[0]
            v, i = logits.topk(top)
            out[f] = {'classes': i.tolist(), 'logits': v.tolist(), 'maxAbs': float(logits.abs().max())}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['write', 'keys', 'skeleton', 'load'])
    ap.add_argument('--out')
    ap.add_argument('--archs', default='resnet18')
    ap.add_argument('--arch')
    ap.add_argument('--file')
    ap.add_argument('--num-classes', type=int, default=1000)
    ap.add_argument('--images', type=int, default=0)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.mode in ('keys', 'skeleton'):
        sd = build(a.arch).state_dict()
        if a.mode == 'skeleton':
            zero = lambda v: torch.zeros([1] * v.dim(), dtype=v.dtype).expand(v.shape)
            torch.save(type(sd)((k, zero(v)) for k, v in sd.items()), a.out)
        print(json.dumps({k: list(v.shape) for k, v in sd.items()}))
        return
    if a.mode == 'load':
        m = build(a.arch, a.num_classes)
        sd = read_safetensors(a.file) if a.file.endswith('.safetensors') else torch.load(a.file)
        m.load_state_dict(sd, strict=True)
        print(json.dumps({'ok': True, 'tensors': len(sd)}))
        return
    os.makedirs(a.out, exist_ok=True)
    files = write_images(os.path.join(a.out, 'images'), a.images, a.seed) if a.images else []
    ref = {}
    for arch in a.archs.split(','):
        m = make_model(arch, a.seed)
        sd = m.state_dict()
        torch.save(sd, os.path.join(a.out, f'{arch}.pth'))
        write_safetensors(os.path.join(a.out, f'{arch}.safetensors'), sd)
        if files:
            ref[arch] = reference(m, os.path.join(a.out, 'images'), files)
    with open(os.path.join(a.out, 'reference.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'torchvision': torchvision.__version__, 'files': files, 'archs': ref}, f)


if __name__ == '__main__':
    sys.exit(main())
