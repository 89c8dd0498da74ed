"""Train the pixel-space SwinIR x2 (the paper's baseline) on the same images: low-resolution
input = antialiased bicubic /2 of the crop, L1 loss, images in [0,1] (SwinIR's convention).

    tools/.venv/bin/python tools/train/train_swinir.py [--steps N] [--threads T]

Writes build/train/swinir.pt (the official layout: SwinIRPadded.net.state_dict()).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import models  # noqa: E402

SEED = 12002
HR_CROP, BATCH, LR, WARMUP = 64, 12, 4e-4, 50


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    common.seed_all(SEED, a.threads)
    net = models.make_swinir()
    net.train()
    crops = data.Crops(data.train_images(), SEED)

    def loss_fn(step):
        hr = crops.batch(BATCH, HR_CROP)                 # [-1,1]
        lr = data.downscale(hr, 2)
        y = net((lr + 1) * 0.5)
        loss = (y - (hr + 1) * 0.5).abs().mean()
        return loss, {"l1": loss.item()}

    secs = common.train_loop("swinir", net.parameters(), a.steps, LR, WARMUP, loss_fn,
                             log_every=200)
    os.makedirs(common.OUT, exist_ok=True)
    torch.save({"state_dict": net.net.state_dict(), "seconds": secs, "steps": a.steps,
                "threads": a.threads, "seed": SEED,
                "recipe": dict(hr_crop=HR_CROP, batch=BATCH, lr=LR, warmup=WARMUP)},
               os.path.join(common.OUT, "swinir.pt"))
    print(f"swinir: {a.steps} steps in {secs:.0f} s ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
