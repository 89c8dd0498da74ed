"""Golden data for the trained models in ref_data/trained/ (tests/test_trained_golden.c), from the
same PyTorch references as every other golden file, run on the committed F16 weights:

  golden_lua.safetensors     LUA, a 12x10 crop of the demo latent (pads to 16x16), both heads
  golden_vae.safetensors     the decoder, a 6x5 crop of the demo latent -> 48x40 image
  golden_swinir.safetensors  pixel SwinIR x2 on a 20x18 crop of the demo photo's half-size image
  golden_metrics.safetensors PSNR, SSIM and bicubic x2 of examples/demo/image_metrics.h (tools/train/metrics.py)

Intermediates are a lean selection (the layer-by-layer coverage lives in the random-weight cases);
fp64_maxabs records how far the fp32 reference is from an fp64 run of the same model.

    tools/.venv/bin/python tools/train/make_trained_golden.py
"""
import copy
import hashlib
import json
import os
import platform
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import metrics  # noqa: E402
import models  # noqa: E402
import lua_ref  # noqa: E402
import make_golden  # noqa: E402
import st_io  # noqa: E402
import swinir_ref  # noqa: E402
import vae_ref  # noqa: E402

GENERATOR = "tools/train/make_trained_golden.py"

LUA_KEEP = r"input|conv_first|layers\.\d+|conv_after_body|heads\.x\d\.conv_before|out\.x\d"
VAE_KEEP = r"input|conv_in|mid\.attn_1|mid\.block_2|up\.\d\.upsample|out"
SWINIR_KEEP = r"input|conv_first|layers\.1|conv_after_body|conv_last|out\.x2"


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def meta_for(kind, extra):
    import diffusers
    with open(os.path.abspath(__file__), "rb") as f:
        gsha = hashlib.sha256(f.read()).hexdigest()
    m = dict(case=f"trained/{kind}", generator=GENERATOR, generator_sha256=gsha,
             date="not recorded (deterministic output)",
             torch_version=torch.__version__, diffusers_version=diffusers.__version__,
             numpy_version=np.__version__, python_version=platform.python_version())
    if kind in models.FILES:
        m["weights"] = os.path.relpath(models.FILES[kind], data.ROOT)
        m["weights_sha256"] = sha(models.FILES[kind])
    m.update(extra)
    return m


def save(name, order, t32, t64, meta, keep):
    pat = re.compile(keep)
    tensors, fp64 = [], {}
    for k in order:
        if not pat.fullmatch(k):
            continue
        a, b = t32[k], t64[k]
        fp64[k] = [float((a.double() - b).abs().max()), float(b.abs().max())]
        tensors.append((k, a.contiguous().numpy(), "F32"))
    meta["fp64_maxabs"] = json.dumps(fp64, separators=(",", ":"))
    meta["fp64_maxabs_doc"] = "name -> [max |fp32 forward - fp64 forward|, max |fp64 value|]"
    path = os.path.join(models.TRAINED, name)
    n = st_io.save(path, tensors, meta)
    worst = max(d / max(r, 1e-30) for d, r in fp64.values())
    print(f"{os.path.relpath(path, data.ROOT)}: {len(tensors)} tensors, {n:,} bytes, "
          f"worst |fp32-fp64|/max|x| {worst:.2e}")


def demo_latent():
    return torch.from_numpy(np.load(os.path.join(models.TRAINED, "demo_latent.npy")))


def lua_case():
    m = models.load_trained("lua")
    x = demo_latent()[None, :, 10:22, 12:22].contiguous()        # [1,16,12,10]
    case = dict(cfg=models.LUA_CFG)
    t32 = make_golden.run_taps(m, x, case)
    t64 = make_golden.run_taps(copy.deepcopy(m).double(), x.double(), case)
    t32["input"], t64["input"] = x, x.double()
    save("golden_lua.safetensors", lua_ref.tensor_order(models.LUA_CFG), t32, t64,
         meta_for("lua", dict(config=json.dumps(models.LUA_CFG), input="demo latent [:, 10:22, 12:22]",
                              input_shape=json.dumps(list(x.shape)))), LUA_KEEP)


def vae_case():
    m = models.load_trained("vae")
    z = demo_latent()[None, :, 12:18, 14:19].contiguous()        # [1,16,6,5]
    t32 = vae_ref.run_diffusers(m, models.VAE_CFG, z)
    t64 = vae_ref.run_diffusers(vae_ref.prepare_fp64(copy.deepcopy(m)), models.VAE_CFG, z.double())
    save("golden_vae.safetensors", vae_ref.tensor_order(models.VAE_CFG), t32, t64,
         meta_for("vae", dict(config=json.dumps(models.VAE_CFG), input="demo latent [:, 12:18, 14:19]",
                              input_shape=json.dumps(list(z.shape)))), VAE_KEEP)


def lr_image():
    """The demo photo's half-size image (8-bit, as the pixel path's input would be)."""
    gt = dict(data.test_images())["astronaut"]
    lr = data.downscale(data.to_tensor(gt), 2)
    return metrics.to_u8_vae(lr)


def swinir_case():
    m = models.load_trained("swinir")
    lr8 = lr_image()[60:80, 100:118]                             # 20x18
    x = metrics.from_u8(lr8)
    t32 = swinir_ref.run_taps(m, x)
    t64 = swinir_ref.run_taps(copy.deepcopy(m).double(), x.double())
    case = dict(upscale=2, upsampler="pixelshuffle", dump="all",
                trunk=dict(depths=models.TRUNK["depths"]))
    save("golden_swinir.safetensors", swinir_ref.tensor_order(case), t32, t64,
         meta_for("swinir", dict(config=json.dumps(models.SWINIR_CFG),
                                 input="demo photo /2, 8-bit, rows 60:80, cols 100:118 (k/255)",
                                 input_shape=json.dumps(list(x.shape)))), SWINIR_KEEP)


def metrics_case():
    """Two 8-bit images and their PSNR/SSIM; bicubic x2 of the first image's half-size crop."""
    gt = dict(data.test_images())["astronaut"][100:140, 180:216]     # 40x36
    small = lr_image()[50:70, 90:108]                                  # 20x18
    x = metrics.from_u8(small)
    up = metrics.bicubic_x2(x)
    up8 = metrics.to_u8_unit(up)
    vals = dict(psnr=metrics.psnr(up8, gt), ssim=metrics.ssim(up8, gt))
    from skimage.metrics import structural_similarity
    sk = structural_similarity(up8, gt, channel_axis=2, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=255)
    assert abs(sk - vals["ssim"]) < 1e-12, (sk, vals["ssim"])
    tensors = [("a", up8.astype(np.float32), "F32"), ("b", gt.astype(np.float32), "F32"),
               ("bicubic_in", x[0].numpy(), "F32"), ("bicubic_out", up[0].numpy(), "F32")]
    meta = meta_for("metrics", dict(
        values=json.dumps(vals), images="a = bicubic_out as bytes, b = demo photo rows 100:140, "
        "cols 180:216; [H,W,3] byte values stored as F32",
        bicubic="torch.nn.functional.interpolate(scale_factor=2, mode='bicubic', "
                "align_corners=False) of bicubic_in [3,20,18]",
        ssim_cross_check=f"skimage.metrics.structural_similarity(gaussian_weights, sigma 1.5, "
                         f"use_sample_covariance False, data_range 255) = {sk!r}"))
    path = os.path.join(models.TRAINED, "golden_metrics.safetensors")
    n = st_io.save(path, tensors, meta)
    print(f"{os.path.relpath(path, data.ROOT)}: {n:,} bytes, {vals}")


def main():
    torch.set_num_threads(1)  # fixed reduction order -> reproducible bytes
    torch.manual_seed(0)
    lua_case()
    vae_case()
    swinir_case()
    metrics_case()


if __name__ == "__main__":
    main()
