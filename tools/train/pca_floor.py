"""The PCA-of-patches floor the trained VAE must beat (issue 20).

A linear code with the VAE's compression: each non-overlapping 8x8x3 patch (192 values) is
projected onto the first 16 principal components (16 numbers per 8x8 patch, as a 16-channel f8
latent: 12x). The PCA (mean + components) is fitted on a seeded sample of patches from the
training images (data.train_images(), patches on each image's 8-pixel grid, in [0,255]) and
scored on the held-out images, each cut as evaluate.py cuts them (evaluate.center, at most
MAX_SIDE): reconstruction rounded to 8 bits, PSNR and SSIM from metrics.py (the C demo's twins).

    tools/.venv/bin/python tools/train/pca_floor.py [--components 16] [--patches 200000]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import evaluate  # noqa: E402
import metrics as M  # noqa: E402

P = 8
SEED = 20001


def patches(a):
    """[H,W,3] -> [N,192] (same dtype) over the 8-pixel grid (H, W cut to multiples of 8)."""
    h, w = a.shape[0] // P, a.shape[1] // P
    t = a[:h * P, :w * P].reshape(h, P, w, P, 3).transpose(0, 2, 1, 3, 4)
    return t.reshape(h * w, P * P * 3), (h, w)


def unpatch(v, hw):
    h, w = hw
    return v.reshape(h, w, P, P, 3).transpose(0, 2, 1, 3, 4).reshape(h * P, w * P, 3)


def fit(images, k, n, seed):
    allp = np.concatenate([patches(a)[0] for _, a in images])
    rng = np.random.default_rng(seed)
    x = allp[rng.choice(len(allp), size=min(n, len(allp)), replace=False)].astype(np.float64)
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / len(xc)
    ev, vec = np.linalg.eigh(cov)
    order = np.argsort(ev)[::-1]
    ev, vec = ev[order], vec[:, order]
    return mean, vec[:, :k], ev[:k], float(ev[:k].sum() / ev.sum()), len(allp), len(x)


def reconstruct(a, mean, comps):
    v, hw = patches(a.astype(np.float64))
    z = (v - mean) @ comps
    y = unpatch(z @ comps.T + mean, hw)
    return np.round(np.clip(y, 0, 255)).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--patches", type=int, default=200000)
    a = ap.parse_args()
    t0 = time.time()
    mean, comps, _, var, total, used = fit(data.train_images(), a.components, a.patches, SEED)
    print(f"PCA of {P}x{P}x3 patches, {a.components} components ({P * P * 3 // a.components}x "
          f"compression): fitted on {used} of {total} training patches (seed {SEED}); "
          f"{100 * var:.2f}% of the variance kept")
    print(f"{'image':12s} {'size':>9s} {'PSNR dB':>8s} {'SSIM':>6s}")
    rows = []
    for name, img in data.test_images():
        gt = evaluate.center(img)
        gt = gt[: gt.shape[0] // P * P, : gt.shape[1] // P * P]
        rec = reconstruct(gt, mean, comps)
        r = (name, M.psnr(rec, gt), M.ssim(rec, gt))
        rows.append(r)
        print(f"{name:12s} {gt.shape[1]:>4d}x{gt.shape[0]:<4d} {r[1]:8.2f} {r[2]:6.3f}")
    print(f"{'mean':12s} {'':9s} {np.mean([r[1] for r in rows]):8.2f} "
          f"{np.mean([r[2] for r in rows]):6.3f}")
    print(f"({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
