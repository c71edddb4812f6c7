#!/usr/bin/env python3
"""Cases for the one-time cross-check of deformConv2d against torchvision.ops.deform_conv2d.

Writes a list of dicts (inputs, options, torchvision's output and the gradients of sum(out * grad_out))
with torch.save; tests/test_deform.cpp's DeformConv.MatchesTorchvisionDump reads it:

    /usr/bin/python3 native/tools/deform_conv_torchvision.py /tmp/deform-tv.pt
    SMNAS_DEFORM_TORCHVISION=/tmp/deform-tv.pt native/build/smnas-unit-tests --gtest_filter='DeformConv.MatchesTorchvision*'

Needs python3 with torch and torchvision (Debian: python3-torchvision).
"""
import sys

import torch
from torchvision.ops import deform_conv2d

torch.manual_seed(0)
# (B, Cin, Cout, H, W, kh, kw, stride, padding, dilation, groups, deformGroups, offset scale, dtype)
CASES = [
    (2, 8, 6, 9, 11, 3, 3, 1, 1, 1, 2, 2, 2.0, torch.float64),
    (1, 8, 4, 12, 10, 3, 3, 2, 2, 2, 1, 4, 3.0, torch.float64),
    (2, 4, 4, 7, 7, 2, 3, 1, 0, 1, 4, 1, 1.0, torch.float64),
    (2, 8, 6, 9, 11, 3, 3, 1, 1, 1, 2, 2, 2.0, torch.float32),
    # GA-RPN feature adaption size class: 3x3, deformGroups 4
    (2, 64, 64, 50, 50, 3, 3, 1, 1, 1, 1, 4, 2.0, torch.float32),
]

out = []
for B, cin, cout, H, W, kh, kw, s, p, d, g, dg, scale, dtype in CASES:
    Ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
    x = torch.randn(B, cin, H, W, dtype=dtype, requires_grad=True)
    off = (torch.randn(B, 2 * dg * kh * kw, Ho, Wo, dtype=dtype) * scale).requires_grad_(True)
    w = torch.randn(cout, cin // g, kh, kw, dtype=dtype, requires_grad=True)
    b = torch.randn(cout, dtype=dtype, requires_grad=True)
    y = deform_conv2d(x, off, w, b, stride=s, padding=p, dilation=d)  # groups/deform groups from the shapes
    go = torch.randn_like(y)
    gx, goff, gw, gb = torch.autograd.grad((y * go).sum(), [x, off, w, b])
    out.append({
        "options": torch.tensor([s, p, d, g, dg]),
        "input": x.detach(), "offset": off.detach(), "weight": w.detach(), "bias": b.detach(),
        "out": y.detach(), "grad_out": go,
        "grad_input": gx, "grad_offset": goff, "grad_weight": gw, "grad_bias": gb,
    })
torch.save(out, sys.argv[1] if len(sys.argv) > 1 else "deform-tv.pt")
print(f"{len(out)} cases, torch {torch.__version__}")
