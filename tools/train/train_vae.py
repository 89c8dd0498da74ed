"""Train the small KL-f8 AutoencoderKL (16 latent channels, FLUX-style) on random crops.

    tools/.venv/bin/python tools/train/train_vae.py [--steps N] [--threads T]

Writes build/train/vae.pt (the whole diffusers state_dict: the encoder is needed to make latents,
only the decoder is committed, by tools/train/export.py). Loss: L1 on pixels of the decoded posterior mean + a small KL term.
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

SEED = 12001
CROP, BATCH, LR, WARMUP, KL_W = 64, 6, 1e-3, 30, 1e-5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=450)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    common.seed_all(SEED, a.threads)
    vae = models.make_vae()
    vae.train()
    crops = data.Crops(data.train_images(), SEED)

    def loss_fn(step):
        x = crops.batch(BATCH, CROP)
        post = vae.encode(x).latent_dist
        y = vae.decode(post.mean).sample   # the posterior mean: a short run cannot afford
                                           # the sampling noise (the KL term keeps z bounded)
        rec = (y - x).abs().mean()
        kl = post.kl().mean() / post.mean[0].numel()
        return rec + KL_W * kl, {"l1": rec.item(), "kl": kl.item()}

    secs = common.train_loop("vae", vae.parameters(), a.steps, LR, WARMUP, loss_fn)
    os.makedirs(common.OUT, exist_ok=True)
    torch.save({"state_dict": vae.state_dict(), "seconds": secs, "steps": a.steps,
                "threads": a.threads, "seed": SEED,
                "recipe": dict(crop=CROP, batch=BATCH, lr=LR, warmup=WARMUP, kl_w=KL_W)},
               os.path.join(common.OUT, "vae.pt"))
    vae.eval()
    with torch.no_grad():
        for n, img in data.test_images():
            x = data.to_tensor(img[:256, :256])
            z = vae.encode(x).latent_dist.mean
            y = vae.decode(z).sample
            print(f"vae held-out {n} 256x256: reconstruction PSNR {common.psnr(y, x):.2f} dB, "
                  f"latent std {z.std().item():.3f}", flush=True)
    print(f"vae: {a.steps} steps in {secs:.0f} s ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
