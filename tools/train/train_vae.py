"""Train the small KL-f8 AutoencoderKL (16 latent channels, FLUX-style) on random crops.

    tools/.venv/bin/python tools/train/train_vae.py [--steps N] [--threads T]

Writes build/train/vae.pt (the whole diffusers state_dict); tools/train/export.py commits the
decoder (F16) and the patch encoder (F32) from it. Loss: L1 on pixels of the decoded
posterior mean + a small KL term.

The start is not random (issue 20; the trials are in docs/notes/issue20_training_trials.md):
- the encoder (models.make_vae: one 8x8 stride-8 conv) starts as the whitened PCA code of the
  training patches (pca_floor.fit): 16 numbers per 8x8x3 patch, unit variance;
- the decoder (the ldm layout latup reads) starts as a smooth x8 upsampling of each patch's mean
  colour, with the latent carried alongside (passthrough_init): 22.7 dB on the held-out crops
  before the first step, where diffusers' random start is 9.8 dB;
- every residual branch starts at zero, so training adds detail to that picture.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import models  # noqa: E402
import pca_floor  # noqa: E402

SEED = 12001
CROP, BATCH, LR, WARMUP, KL_W = 96, 3, 5e-5, 50, 1e-5


def pca_fit(images):
    mean, comps, ev, _, _, _ = pca_floor.fit(images, models.VAE_CFG["latent_channels"], 200000,
                                             pca_floor.SEED)
    return mean, comps, ev


def pca_encoder_init(conv, fit):
    """The encoder conv [32,3,8,8] as the whitened PCA code: z = (u - mean) . v / sd for u in
    [0,255]; the encoder sees x = u / 127.5 - 1. Log-variance channels start at 0."""
    mean, comps, ev = fit
    p = models.ENCODER_PATCH
    k = comps.shape[1]
    w = comps / np.sqrt(ev)                          # [192,k]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        # pca_floor's patch vector is (py, px, c) flattened; the conv's is [c, py, px]
        conv.weight[:k] = torch.from_numpy(
            (127.5 * w).T.reshape(k, p, p, 3).transpose(0, 3, 1, 2).copy()).float()
        conv.bias[:k] = torch.from_numpy((127.5 - mean) @ w).float()


def pca_block_mean(fit):
    """(a [3,k], c [3]): the mean colour, in [-1,1], of the patch the code z decodes to:
    a[c] . z + c[c]."""
    mean, comps, ev = fit
    basis = comps * np.sqrt(ev)                      # u = mean + basis @ z
    a = np.stack([basis[c::3].mean(0) for c in range(3)]) / 127.5
    c = np.array([mean[c::3].mean() for c in range(3)]) / 127.5 - 1.0
    return a, c


def passthrough_init(vae, a, c, K=20.0, b=10.0):
    """Start the ldm decoder as a smooth x8 upsampling of the patch-mean colour (a . z + c).

    Colour c rides in channels 4c..4c+3 of the residual stream as [X, -X, +K, -K]. That is one
    GroupNorm group of norm_out (4 channels per group), whose mean is then 0 and whose std is
    sqrt((K^2 + E X^2) / 2), within E X^2 / 2K^2 of a constant: norm_out passes X through almost
    linearly, and beta = b keeps the SiLU after it in its linear range. Every other group of
    norm_out gets a [+K, -K] pair too (from the last shortcut's bias), so that what a residual
    branch writes there is not blown up to unit scale. The latent itself rides in channels 4g,
    4g+1 of groups 3..10, so every residual branch sees the detail from the first step. Residual
    branches (ResnetBlock conv2, attention to_out) start at zero, shortcuts carry the channels
    above, and each upsampler's conv is [1/4, 1/2, 1/4] per axis on the signals (nearest x2 then
    that kernel is bilinear x2) and the identity on the constants."""
    d = vae.decoder
    a = torch.as_tensor(a, dtype=torch.float32)
    c = torch.as_tensor(c, dtype=torch.float32)
    k1 = torch.tensor([0.25, 0.5, 0.25])
    smooth = torch.outer(k1, k1)
    zpos = [4 * g + j for g in range(3, 11) for j in (0, 1)]
    assert len(zpos) == a.shape[1]
    carried = set(range(12)) | set(zpos)
    const = {4 * ch + j for ch in range(3) for j in (2, 3)}
    with torch.no_grad():
        d.conv_in.weight.zero_()
        d.conv_in.bias.zero_()
        for ch in range(3):
            d.conv_in.weight[4 * ch, :, 1, 1] = a[ch]
            d.conv_in.bias[4 * ch] = c[ch]
            d.conv_in.weight[4 * ch + 1, :, 1, 1] = -a[ch]
            d.conv_in.bias[4 * ch + 1] = -c[ch]
            d.conv_in.bias[4 * ch + 2] = K
            d.conv_in.bias[4 * ch + 3] = -K
        for i, p in enumerate(zpos):
            d.conv_in.weight[p, i, 1, 1] = 1.0
        resnets = list(d.mid_block.resnets) + [r for blk in d.up_blocks for r in blk.resnets]
        for r in resnets:
            r.conv2.weight.zero_()
            r.conv2.bias.zero_()
            if r.conv_shortcut is not None:
                r.conv_shortcut.weight.zero_()
                r.conv_shortcut.bias.zero_()
                for i in carried:
                    r.conv_shortcut.weight[i, i, 0, 0] = 1.0
        for at in d.mid_block.attentions:
            at.to_out[0].weight.zero_()
            at.to_out[0].bias.zero_()
        for blk in d.up_blocks:
            if blk.upsamplers is None:
                continue
            conv = blk.upsamplers[0].conv
            conv.weight.zero_()
            conv.bias.zero_()
            for i in carried:
                if i in const:
                    conv.weight[i, i, 1, 1] = 1.0
                else:
                    conv.weight[i, i] = smooth
        last = d.up_blocks[-1].resnets[-1].conv_shortcut
        for g in range(3, d.conv_norm_out.num_groups):
            last.bias[4 * g + 2] = K
            last.bias[4 * g + 3] = -K
        for g in range(d.conv_norm_out.num_groups):
            d.conv_norm_out.weight[4 * g + 2] = 0.0
            d.conv_norm_out.weight[4 * g + 3] = 0.0
        for ch in range(3):
            d.conv_norm_out.weight[4 * ch] = K / math.sqrt(2.0)
            d.conv_norm_out.bias[4 * ch] = b
        d.conv_out.weight.zero_()
        for ch in range(3):
            d.conv_out.weight[ch, 4 * ch, 1, 1] = 1.0
            d.conv_out.bias[ch] = -b


def make_start(train):
    """The VAE at its designed start (encoder from the PCA, decoder passthrough_init)."""
    vae = models.make_vae()
    fit = pca_fit(train)
    pca_encoder_init(vae.encoder, fit)
    passthrough_init(vae, *pca_block_mean(fit))
    return vae


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    common.seed_all(SEED, a.threads)
    train = data.train_images()
    vae = make_start(train)
    vae.train()
    crops = data.Crops(train, SEED)

    def loss_fn(step):
        x = crops.batch(BATCH, CROP)
        post = vae.encode(x).latent_dist
        y = vae.decode(post.mean).sample   # the posterior mean: a short run cannot afford
                                           # the sampling noise (the KL term keeps z bounded)
        rec = (y - x).abs().mean()
        kl = post.kl().mean() / post.mean[0].numel()
        return rec + KL_W * kl, {"l1": rec.item(), "kl": kl.item()}

    secs = common.train_loop("vae", vae.parameters(), a.steps, LR, WARMUP, loss_fn, log_every=200)
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
