"""Python twins of src/cli/image_metrics.h (PSNR, SSIM, bicubic x2) and the byte mappings of the
PNG writer, so the held-out table (evaluate.py) and the C demo score pictures the same way; the
golden test checks the C functions against these."""
import math

import numpy as np
import torch
import torch.nn.functional as F


def to_u8_vae(x):
    """[1,3,H,W] or [3,H,W] decoder output in [-1,1] -> uint8 [H,W,3] (diffusers' mapping, numpy
    round-half-even, as latup's PNG writer for decodes)."""
    x = x.reshape(3, x.shape[-2], x.shape[-1]).float()
    y = ((x * 0.5 + 0.5).clamp(0, 1) * 255).numpy()
    return np.round(y).astype(np.uint8).transpose(1, 2, 0).copy()


def to_u8_unit(x):
    """[.,3,H,W] in [0,1] -> uint8 [H,W,3] (round half away from zero, latup's unit mapping)."""
    x = x.reshape(3, x.shape[-2], x.shape[-1]).float()
    y = (x.clamp(0, 1) * 255).numpy().astype(np.float64)
    return np.floor(y + 0.5).astype(np.uint8).transpose(1, 2, 0).copy()


def from_u8(a):
    """uint8 [H,W,3] -> float [1,3,H,W] k/255 (how latup reads a PNG)."""
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None].float() / 255.0


def psnr(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    se = float((d * d).sum())
    return 99.0 if se == 0 else 10 * math.log10(255.0 ** 2 / (se / d.size))


def _gauss():
    x = np.arange(11, dtype=np.float64) - 5
    g = np.exp(-x * x / (2 * 1.5 * 1.5))
    return g / g.sum()


def ssim(a, b):
    """Gaussian 11x11 (sigma 1.5), valid positions, mean over the map and over R, G, B."""
    g = _gauss()
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(x):  # separable 'valid' filtering, rows then columns
        h = sum(g[k] * x[:, k:x.shape[1] - 10 + k] for k in range(11))
        return sum(g[k] * h[k:h.shape[0] - 10 + k] for k in range(11))
    tot = 0.0
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        mx, my = filt(x), filt(y)
        vx, vy, cxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
        s = (2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2))
        tot += float(s.mean())
    return tot / 3


def bicubic_x2(x):
    """PyTorch bicubic x2, align_corners=False, no antialias ([1,3,H,W] float)."""
    return F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
