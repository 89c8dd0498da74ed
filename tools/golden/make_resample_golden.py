#!/usr/bin/env python3
"""Golden data for the resampling of `latup eval` (src/cli/image_metrics.h; tests/test_image_metrics.c):
torch's antialiased bicubic downscale (tools/train/data.py's downscale: F.interpolate(x,
scale_factor=1/s, mode="bicubic", align_corners=False, antialias=True), then clamp(-1, 1)) at
scales 2 and 4 on an odd-sized image (37x29: floor sizes, border taps), and torch's plain bicubic
upsampling x2 and x4 (the eval's bicubic path, A = -0.75) of a small image. Seeded pixels in
[-1, 1] (a photo-like smooth field plus noise, a few values at the range's ends).

    /work/main/tools/.venv/bin/python tools/golden/make_resample_golden.py   # or any python with torch
Writes ref_data/resample/golden_resample.safetensors (float32; metadata: torch version).
"""
import os
import platform
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import st_io  # noqa: E402


def image(rng, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([np.sin(x * 0.7 + k) * np.cos(y * 0.45 - k) for k in range(3)])
    a = 0.7 * base + 0.3 * rng.uniform(-1, 1, size=(3, h, w))
    a[0, 0, 0], a[1, 5, 3], a[2, h - 1, w - 1] = 1.0, -1.0, 1.0
    return torch.from_numpy(np.clip(a, -1, 1).astype(np.float32))[None]


def main():
    rng = np.random.default_rng(22)
    x = image(rng, 37, 29)
    small = image(rng, 9, 7)
    t = {"input": x[0], "small": small[0]}
    with torch.no_grad():
        for s in (2, 4):
            y = F.interpolate(x, scale_factor=1.0 / s, mode="bicubic", align_corners=False, antialias=True)
            t[f"down.x{s}"] = y.clamp(-1, 1)[0]
            t[f"up.x{s}"] = F.interpolate(small, scale_factor=s, mode="bicubic", align_corners=False)[0]
    tensors = [(k, v.contiguous().numpy().astype(np.float32), "F32") for k, v in t.items()]
    meta = {"generator": "tools/golden/make_resample_golden.py", "torch_version": torch.__version__,
            "numpy_version": np.__version__, "python_version": platform.python_version(),
            "down": "F.interpolate(x, scale_factor=1/s, mode='bicubic', align_corners=False, antialias=True).clamp(-1, 1)",
            "up": "F.interpolate(x, scale_factor=s, mode='bicubic', align_corners=False)"}
    out = os.path.join(ROOT, "ref_data", "resample")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "golden_resample.safetensors")
    n = st_io.save(path, tensors, meta)
    print(f"wrote {path} ({n} bytes): " + ", ".join(f"{k} {list(a.shape)}" for k, a, _ in tensors))


if __name__ == "__main__":
    main()
