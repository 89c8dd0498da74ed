"""Train the pixel-space SwinIR x2 (the paper's baseline) on the same images, L1 loss, images in
[0,1] (SwinIR's convention), in two stages:

1. clean pairs: input = antialiased bicubic /2 of the crop;
2. pairs as the pixel path uses it: input = the 8-bit decode of the trained VAE's latent of that
   half-size image, target = the crop. A decode's own error is larger than what upscaling loses,
   so a SwinIR trained only on clean halves ties bicubic on decodes (issue 20).

    tools/.venv/bin/python tools/train/train_swinir.py [--steps N] [--decode-steps N] [--from-stage1]

Stage 2 needs build/train/vae.pt; writes build/train/swinir_stage1.pt
and build/train/swinir.pt (the official layout: SwinIRPadded.net.state_dict()).
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
import train_lua  # noqa: E402  (its load_encoder: the trained VAE, build/train/vae.pt)

SEED = 12002
HR_CROP, BATCH, LR, WARMUP = 64, 12, 4e-4, 50
# stage 2: a pool of DEC_POOL decodes of DEC_CROP-pixel crops' half-size latents (decoded once),
# from which each step cuts BATCH random HR_CROP / 2 windows and their targets
DEC_SEED, DEC_POOL, DEC_CROP, DEC_LR, DEC_WARMUP = 12005, 256, 256, 1e-4, 20


def decode_pool(vae, train, n):
    """n fresh DEC_CROP crops in [0,1], and the 8-bit decodes of their half-size latents (what the
    pixel path gives SwinIR: decode at 1x, written as a PNG, read back as k/255)."""
    crops = data.Crops(train, DEC_SEED)
    hrs, decs = [], []
    with torch.no_grad():
        for _ in range(n // 8):
            hr = crops.batch(8, DEC_CROP)
            z = vae.encode(data.downscale(hr, 2).clamp(-1, 1)).latent_dist.mean
            d = vae.decode(z).sample
            decs.append(torch.round((d * 0.5 + 0.5).clamp(0, 1) * 255) / 255)
            hrs.append((hr + 1) * 0.5)
    return torch.cat(hrs), torch.cat(decs)


def stage1(a, net):
    """Clean pairs (net: just made, after common.seed_all(SEED)); returns seconds."""
    crops = data.Crops(data.train_images(), SEED)

    def loss_fn(step):
        hr = crops.batch(BATCH, HR_CROP)                 # [-1,1]
        lr = data.downscale(hr, 2)
        y = net((lr + 1) * 0.5)
        loss = (y - (hr + 1) * 0.5).abs().mean()
        return loss, {"l1": loss.item()}

    return common.train_loop("swinir", net.parameters(), a.steps, LR, WARMUP, loss_fn,
                             log_every=200)


def stage2(a, net):
    """Decoded pairs; its own seed, so it gives the same weights after stage 1 in one process or
    from build/train/swinir_stage1.pt. Returns seconds."""
    common.seed_all(DEC_SEED, a.threads)
    t0 = time.time()
    hrs, decs = decode_pool(train_lua.load_encoder(), data.train_images(), DEC_POOL)
    pool_secs = time.time() - t0
    rng = torch.Generator().manual_seed(DEC_SEED)
    c = HR_CROP // 2
    n_pos = DEC_CROP // 2 - c + 1

    def loss_fn(step):
        i = torch.randint(0, len(hrs), (BATCH,), generator=rng).tolist()
        yx = torch.randint(0, n_pos, (BATCH, 2), generator=rng).tolist()
        x = torch.stack([decs[k, :, y:y + c, v:v + c] for k, (y, v) in zip(i, yx)])
        t = torch.stack([hrs[k, :, 2 * y:2 * y + 2 * c, 2 * v:2 * v + 2 * c]
                         for k, (y, v) in zip(i, yx)])
        loss = (net(x) - t).abs().mean()
        return loss, {"l1": loss.item()}

    return pool_secs + common.train_loop("swinir decoded", net.parameters(), a.decode_steps,
                                         DEC_LR, DEC_WARMUP, loss_fn, log_every=100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500, help="stage 1 (clean pairs) steps")
    ap.add_argument("--decode-steps", type=int, default=600, help="stage 2 (decoded inputs) steps")
    ap.add_argument("--from-stage1", action="store_true",
                    help="skip stage 1: start stage 2 from build/train/swinir_stage1.pt")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    os.makedirs(common.OUT, exist_ok=True)
    common.seed_all(SEED, a.threads)
    net = models.make_swinir()
    s1 = os.path.join(common.OUT, "swinir_stage1.pt")
    if a.from_stage1:
        ck = torch.load(s1)
        net.net.load_state_dict(ck["state_dict"])
        secs1 = ck["seconds"]
    else:
        net.train()
        secs1 = stage1(a, net)
        torch.save({"state_dict": net.net.state_dict(), "seconds": secs1}, s1)
    net.train()
    secs2 = stage2(a, net)
    torch.save({"state_dict": net.net.state_dict(), "seconds": secs1 + secs2,
                "stage_seconds": [secs1, secs2], "steps": a.steps + a.decode_steps,
                "threads": a.threads, "seed": SEED,
                "recipe": dict(stage1=dict(hr_crop=HR_CROP, batch=BATCH, lr=LR, warmup=WARMUP,
                                           steps=a.steps, input="antialiased bicubic /2"),
                               stage2=dict(pool=DEC_POOL, pool_crop=DEC_CROP, hr_crop=HR_CROP,
                                           batch=BATCH, lr=DEC_LR, warmup=DEC_WARMUP,
                                           steps=a.decode_steps,
                                           input="8-bit decode of the /2 latent"))},
               os.path.join(common.OUT, "swinir.pt"))
    print(f"swinir: {a.steps} + {a.decode_steps} steps in {secs1:.0f} + {secs2:.0f} s "
          f"({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
