"""Train the small LUA (released layout: heads.x2 and heads.x4) in latent space.

    tools/.venv/bin/python tools/train/train_lua.py [--steps N] [--threads T] [--crops N]

Data: random 192x192 crops (with flips) of the training images, encoded once by the trained
VAE's encoder (posterior mean): the crop itself (24x24 latent, the target), and its antialiased
bicubic /2 and /4 (12x12 and 6x6 latents, the inputs of heads.x2 and heads.x4). Loss: L1 in
latent space, x2 + x4. Needs build/train/vae.pt; writes build/train/lua.pt.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import models  # noqa: E402

SEED = 12003
HR_CROP, BATCH, LR, WARMUP = 192, 8, 4e-4, 50


def load_encoder():
    vae = models.make_vae()
    vae.load_state_dict(torch.load(os.path.join(common.OUT, "vae.pt"))["state_dict"])
    vae.eval()
    return vae


def make_pairs(vae, n):
    crops = data.Crops(data.train_images(), SEED)
    zs = {1: [], 2: [], 4: []}
    t0 = time.time()
    with torch.no_grad():
        for i in range(0, n, 8):
            hr = crops.batch(min(8, n - i), HR_CROP)
            for s in (1, 2, 4):
                x = hr if s == 1 else data.downscale(hr, s).clamp(-1, 1)
                zs[s].append(vae.encode(x).latent_dist.mean)
            if (i // 8) % 16 == 15:
                print(f"lua data: {i + 8}/{n} crops encoded, {time.time() - t0:.0f}s", flush=True)
    return {s: torch.cat(v) for s, v in zs.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crops", type=int, default=384)
    a = ap.parse_args()
    common.seed_all(SEED, a.threads)
    t0 = time.time()
    z = make_pairs(load_encoder(), a.crops)
    data_secs = time.time() - t0
    print(f"lua data: {a.crops} crops, latent std {z[1].std().item():.3f}, {data_secs:.0f}s",
          flush=True)
    # what the trained heads are measured against: the input latent upscaled bicubically
    for s in (2, 4):
        b = F.interpolate(z[s], scale_factor=s, mode="bicubic", align_corners=False)
        print(f"lua data: bicubic x{s} latent L1 vs target {(b - z[1]).abs().mean().item():.4f}")

    lua = models.make_lua()
    lua.train()
    g = torch.Generator().manual_seed(SEED)

    def loss_fn(step):
        idx = torch.randint(0, a.crops, (BATCH,), generator=g)
        flip = torch.randint(0, 2, (2,), generator=g).tolist()
        dims = [d for d, f in zip((3, 2), flip) if f]

        def f(t):
            return t.flip(dims) if dims else t
        tgt = f(z[1][idx])
        l2 = (lua(f(z[2][idx]), 2) - tgt).abs().mean()
        l4 = (lua(f(z[4][idx]), 4) - tgt).abs().mean()
        return l2 + l4, {"l1_x2": l2.item(), "l1_x4": l4.item()}

    secs = common.train_loop("lua", lua.parameters(), a.steps, LR, WARMUP, loss_fn)
    torch.save({"state_dict": lua.state_dict(), "seconds": secs, "data_seconds": data_secs,
                "steps": a.steps, "threads": a.threads, "seed": SEED, "crops": a.crops,
                "recipe": dict(hr_crop=HR_CROP, batch=BATCH, lr=LR, warmup=WARMUP)},
               os.path.join(common.OUT, "lua.pt"))
    print(f"lua: {a.steps} steps in {secs:.0f} s + data {data_secs:.0f} s "
          f"({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
