"""Train the small LUA (released layout: heads.x2 and heads.x4), in two stages as the paper does:
in latent space, then through the frozen decoder in pixel space.

    tools/.venv/bin/python tools/train/train_lua.py [--steps N] [--pixel-steps N] [--threads T]

Stage 1 data: fresh random 192x192 crops (with flips) of the training images at every step, encoded by
the trained VAE's encoder (posterior mean; the encoder is one strided conv, so encoding costs
next to nothing): the crop itself (24x24 latent, the target), and its antialiased bicubic /2 and
/4 (12x12 and 6x6 latents, the inputs of heads.x2 and heads.x4). Loss: L1 in latent space, x2 +
x4, each latent channel weighted by how much the trained decoder's pixels move per unit of it
(measured once on training crops, at least 0.05 of the mean), so the loss ranks errors as the
decoded picture does.

Stage 2: a small latent error can still decode badly (the decoder is not linear), so the x2 path
is then trained on what it is scored on: L1 between decode(LUA x2) and the 256x256 crop, the
decoder frozen, with small latent terms that keep the x4 head (same trunk) in place. Its crops
leave no padding in the LUA's windows (see PIX_CROP).

Needs build/train/vae.pt; writes build/train/lua_stage1.pt and build/train/lua.pt.
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
# stage 2: the x2 path's pixels through the frozen decoder
# 256: the x2 input is 16x16 and the x4 input 8x8, whole windows of 8 with no padding, so every
# output position is scored (stage 1's 192 pads 12 -> 16 and 6 -> 8: the padded rows were never
# scored, and the model learned nothing useful there)
PIX_CROP, PIX_BATCH, PIX_LR, PIX_WARMUP, PIX_LAT2, PIX_LAT4 = 256, 2, 1e-4, 20, 0.1, 0.25


def load_encoder():
    vae = models.make_vae()
    vae.load_state_dict(torch.load(os.path.join(common.OUT, "vae.pt"))["state_dict"])
    vae.eval()
    return vae


def encode(vae, hr, scales=(1, 2, 4)):
    """{s: latent of hr antialiased-bicubic downscaled by s (hr itself for 1)}, posterior means."""
    with torch.no_grad():
        return {s: vae.encode(hr if s == 1 else data.downscale(hr, s).clamp(-1, 1))
                .latent_dist.mean for s in scales}


def encode_crops(vae, crops, n, size=HR_CROP):
    """n fresh crops -> {1: target latent, 2: latent of the /2 image, 4: of the /4 image}."""
    return encode(vae, crops.batch(n, size))


def channel_weights(vae, crops):
    """Per latent channel: the RMS change of the decoded pixels per unit change of the channel
    (finite difference, 0.1, on 4 training crops), normalised to mean 1, at least 0.05."""
    z = encode_crops(vae, crops, 4)[1]
    w = []
    with torch.no_grad():
        y0 = vae.decode(z).sample
        for k in range(z.shape[1]):
            dz = z.clone()
            dz[:, k] += 0.1
            w.append(((vae.decode(dz).sample - y0) ** 2).mean().sqrt().item() / 0.1)
    w = torch.tensor(w)
    return (w / w.mean()).clamp(min=0.05)   # every channel keeps some weight


def stage1(a, vae, train):
    """Latent L1 (channel-weighted), both heads, fresh crops; returns (lua, seconds, weights)."""
    common.seed_all(SEED, a.threads)
    crops = data.Crops(train, SEED)
    t0 = time.time()
    w = channel_weights(vae, crops).view(1, -1, 1, 1)
    data_secs = time.time() - t0
    print("lua: latent channel weights " + " ".join(f"{v:.2f}" for v in w.flatten().tolist()),
          flush=True)
    # what the trained heads are measured against: the input latent upscaled bicubically
    z = encode_crops(vae, crops, 32)
    for s in (2, 4):
        b = F.interpolate(z[s], scale_factor=s, mode="bicubic", align_corners=False)
        print(f"lua data: bicubic x{s} latent weighted L1 vs target "
              f"{((b - z[1]).abs() * w).mean().item():.4f}", flush=True)

    lua = models.make_lua()
    lua.train()

    def loss_fn(step):
        z = encode_crops(vae, crops, BATCH)
        l2 = ((lua(z[2], 2) - z[1]).abs() * w).mean()
        l4 = ((lua(z[4], 4) - z[1]).abs() * w).mean()
        return l2 + l4, {"l1_x2": l2.item(), "l1_x4": l4.item()}

    secs = common.train_loop("lua", lua.parameters(), a.steps, LR, WARMUP, loss_fn,
                             log_every=200)
    return lua, secs + data_secs, w


def stage2(a, vae, train, lua, w):
    """Pixel L1 of the x2 path through the frozen decoder (decode(LUA x2) against the crop), with
    the latent terms kept small so the x4 head, which shares the trunk, does not drift. Its own
    seed and crop stream, so it gives the same weights whether it follows stage 1 in one process
    or starts from build/train/lua_stage1.pt."""
    common.seed_all(SEED + 1, a.threads)
    crops = data.Crops(train, SEED + 1)
    for p in vae.parameters():
        p.requires_grad_(False)
    lua.train()

    def loss_fn(step):
        hr = crops.batch(PIX_BATCH, PIX_CROP)
        zp = encode(vae, hr, (1, 2))
        u2 = lua(zp[2], 2)
        pix = (vae.decode(u2).sample - hr).abs().mean()
        l2 = ((u2 - zp[1]).abs() * w).mean()
        z = encode_crops(vae, crops, PIX_BATCH, PIX_CROP)
        l4 = ((lua(z[4], 4) - z[1]).abs() * w).mean()
        return pix + PIX_LAT2 * l2 + PIX_LAT4 * l4, {"pix": pix.item(), "l1_x2": l2.item(),
                                                     "l1_x4": l4.item()}

    return common.train_loop("lua pixel", lua.parameters(), a.pixel_steps, PIX_LR, PIX_WARMUP,
                             loss_fn, log_every=50)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4000, help="stage 1 (latent loss) steps")
    ap.add_argument("--pixel-steps", type=int, default=300, help="stage 2 (pixel loss) steps")
    ap.add_argument("--from-stage1", action="store_true",
                    help="skip stage 1: start stage 2 from build/train/lua_stage1.pt")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    vae = load_encoder()
    train = data.train_images()
    s1 = os.path.join(common.OUT, "lua_stage1.pt")
    if a.from_stage1:
        ck = torch.load(s1)
        lua = models.make_lua()
        lua.load_state_dict(ck["state_dict"])
        secs1, w = ck["seconds"], torch.tensor(ck["channel_weights"]).view(1, -1, 1, 1)
    else:
        lua, secs1, w = stage1(a, vae, train)
        torch.save({"state_dict": lua.state_dict(), "seconds": secs1,
                    "channel_weights": w.flatten().tolist()}, s1)
    secs2 = stage2(a, vae, train, lua, w)
    torch.save({"state_dict": lua.state_dict(), "seconds": secs1 + secs2,
                "stage_seconds": [secs1, secs2],
                "steps": a.steps + a.pixel_steps, "threads": a.threads, "seed": SEED,
                "channel_weights": w.flatten().tolist(),
                "recipe": dict(stage1=dict(hr_crop=HR_CROP, batch=BATCH, lr=LR, warmup=WARMUP,
                                           steps=a.steps,
                                           loss="channel-weighted latent L1, x2 + x4"),
                               stage2=dict(hr_crop=PIX_CROP, batch=PIX_BATCH, lr=PIX_LR,
                                           warmup=PIX_WARMUP, steps=a.pixel_steps,
                                           loss=f"pixel L1 of decode(LUA x2) + {PIX_LAT2} x2 "
                                                f"+ {PIX_LAT4} x4 latent L1"))},
               os.path.join(common.OUT, "lua.pt"))
    print(f"lua: {a.steps} + {a.pixel_steps} steps in {secs1:.0f} + {secs2:.0f} s "
          f"({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
