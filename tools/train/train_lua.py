"""Train the small LUA (released layout: heads.x2 and heads.x4) in two steps:

1. a designed start: the least-squares linear x2 upscaler of latents (linear_fit; seconds), built
   into the LUA's own layers so the untrained network computes it exactly (designed_start);
2. training through the frozen decoder in pixel space, from that start: L1 between decode(LUA x2)
   and the 256x256 crop, with small channel-weighted latent L1 terms for x2 and x4 (the x4 head
   shares the trunk), each latent channel weighted by how much the trained decoder's pixels move
   per unit of it. Its crops leave no padding in the LUA's windows (see PIX_CROP).

Data: fresh random crops (with flips) of the training images at every step, encoded by the
trained VAE's encoder (posterior mean; the encoder is one strided conv, so encoding costs next to
nothing): the crop itself (the target latent) and its antialiased bicubic /2 and /4 (the inputs
of heads.x2 and heads.x4).

Why (issue 20): trained from a random start on a latent loss (4000 steps, 15 minutes), the LUA
decoded 1.4 dB under decode + bicubic on the held-out images; the linear fit alone decodes 0.7 dB
over it.

    tools/.venv/bin/python tools/train/train_lua.py [--steps N] [--threads T]

Needs build/train/vae.pt; writes build/train/lua.pt.
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
# the x2 path's pixels through the frozen decoder
# 256: the x2 input is 16x16 and the x4 input 8x8, whole windows of 8 with no padding, so every
# output position is scored (an earlier recipe's 192-pixel crops padded 12 -> 16 and 6 -> 8: the
# padded rows were never scored, and the model learned nothing useful there)
# 5e-5: Adam moves every zero-started weight by about the learning rate per step; the start is
# worth 0.7 dB and must survive (as for the VAE, train_vae.py)
PIX_CROP, PIX_BATCH, PIX_LR, PIX_WARMUP, PIX_LAT2, PIX_LAT4 = 256, 2, 5e-5, 20, 0.1, 0.25


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


def encode_crops(vae, crops, n, size=PIX_CROP):
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


LIN_SEED, LIN_BATCHES, LIN_CROP, LIN_K = 12001, 60, 256, 3


def linear_fit(vae, train):
    """The least-squares linear x2 latent upscaler: each 2x2 block of the target latent as an affine
    function of the 3x3 neighbourhood of the input latent around it, fit on LIN_BATCHES x 16 fresh
    256-pixel crops (interior positions). Returns A [16*9 + 1, 64]: rows = input channel * 9 +
    dy * 3 + dx (F.unfold's order), then the bias; columns = channel * 4 + i * 2 + j (the order
    PixelShuffle(2) reads). On the held-out images it alone beats decode + bicubic (issue 20)."""
    common.seed_all(LIN_SEED, torch.get_num_threads())
    crops = data.Crops(train, LIN_SEED)
    r = LIN_K // 2
    xtx, xty = 0, 0
    for _ in range(LIN_BATCHES):
        z = encode(vae, crops.batch(16, LIN_CROP), (1, 2))
        x = F.unfold(z[2], LIN_K).permute(0, 2, 1).reshape(-1, 16 * LIN_K * LIN_K)
        x = torch.cat([x, torch.ones(x.shape[0], 1)], 1).double()
        y = F.pixel_unshuffle(z[1], 2)[:, :, r:-r, r:-r].permute(0, 2, 3, 1).reshape(-1, 64)
        xtx, xty = xtx + x.T @ x, xty + x.T @ y.double()
    eye = torch.eye(xtx.shape[0], dtype=torch.float64)
    return torch.linalg.solve(xtx + 1e-3 * eye, xty).float()


def designed_start(lua, a_fit):
    """Make the untrained LUA compute the linear upscaler exactly, with every residual branch free
    to learn on top (the LUA's counterpart of the VAE's designed start, train_vae.make_start):

    - conv_first passes the latent through its channels 0..15 (centre tap identity); the others
      keep their random start, as features for the trunk;
    - conv_after_body starts at zero, so the trunk's output is conv_first's (its long skip);
    - each head's conv_before writes [X, -X] into channels 0..31: LeakyReLU(X) - LeakyReLU(-X)
      = 1.01 X exactly, so the latent crosses the activation linearly;
    - the first upsample conv computes the fit (A / 1.01 on X, -A / 1.01 on -X), PixelShuffle
      puts the 2x2 block in place, and conv_last passes channels 0..15 out;
    - heads.x4 applies the x2 fit a second time in its second upsample conv.

    Every weight that is not part of the linear path keeps its random start where its partner on
    the path is zero (and the other way round), so no branch starts dead."""
    C, k = lua.in_chans, LIN_K
    w = a_fit[:-1].T.reshape(4 * C, C, k, k)      # [out = c*4+s, in, dy, dx]
    b = a_fit[-1]
    with torch.no_grad():
        f = lua.conv_first
        f.weight[:C].zero_()
        f.bias[:C].zero_()
        for c in range(C):
            f.weight[c, c, 1, 1] = 1.0
        lua.conv_after_body.weight.zero_()
        lua.conv_after_body.bias.zero_()
        for head in lua.heads.values():
            cb = head.conv_before[0]
            slope = 1.0 + head.conv_before[1].negative_slope   # LeakyReLU(X) - LeakyReLU(-X) = slope X
            cb.weight[:2 * C].zero_()
            cb.bias[:2 * C].zero_()
            for c in range(C):
                cb.weight[c, c, 1, 1] = 1.0
                cb.weight[C + c, c, 1, 1] = -1.0
            ups = [m for m in head.upsample if isinstance(m, torch.nn.Conv2d)]
            for i, up in enumerate(ups):
                up.weight[:4 * C].zero_()
                if i == 0:
                    up.weight[:4 * C, :C] = w / slope
                    up.weight[:4 * C, C:2 * C] = -w / slope
                else:
                    up.weight[:4 * C, :C] = w
                up.bias[:4 * C] = b
            cl = head.conv_last
            cl.weight.zero_()
            cl.bias.zero_()
            for c in range(C):
                cl.weight[c, c, 1, 1] = 1.0
    return lua


def train_pixels(a, vae, train, lua, w):
    """Pixel L1 of the x2 path through the frozen decoder (decode(LUA x2) against the crop), with
    the latent terms kept small so the x4 head, which shares the trunk, does not drift."""
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

    return common.train_loop("lua pixel", lua.parameters(), a.steps, PIX_LR, PIX_WARMUP,
                             loss_fn, log_every=50)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400, help="pixel-loss steps from the designed start")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    vae = load_encoder()
    train = data.train_images()
    t0 = time.time()
    common.seed_all(SEED, a.threads)
    w = channel_weights(vae, data.Crops(train, SEED)).view(1, -1, 1, 1)
    print("lua: latent channel weights " + " ".join(f"{v:.2f}" for v in w.flatten().tolist()),
          flush=True)
    a_fit = linear_fit(vae, train)
    torch.manual_seed(SEED)          # the random start of everything off the linear path
    lua = designed_start(models.make_lua(), a_fit)
    secs0 = time.time() - t0
    print(f"lua: linear fit and designed start in {secs0:.0f} s", flush=True)
    secs1 = train_pixels(a, vae, train, lua, w)
    torch.save({"state_dict": lua.state_dict(), "seconds": secs0 + secs1,
                "stage_seconds": [secs0, secs1], "steps": a.steps, "threads": a.threads,
                "seed": SEED, "channel_weights": w.flatten().tolist(),
                "recipe": dict(start=dict(linear_fit=dict(crops=LIN_BATCHES * 16, crop=LIN_CROP,
                                                          neighbourhood=LIN_K, seed=LIN_SEED)),
                               pixels=dict(hr_crop=PIX_CROP, batch=PIX_BATCH, lr=PIX_LR,
                                           warmup=PIX_WARMUP, steps=a.steps,
                                           loss=f"pixel L1 of decode(LUA x2) + {PIX_LAT2} x2 "
                                                f"+ {PIX_LAT4} x4 latent L1"))},
               os.path.join(common.OUT, "lua.pt"))
    print(f"lua: designed start + {a.steps} steps in {secs0:.0f} + {secs1:.0f} s "
          f"({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
