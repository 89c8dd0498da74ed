"""The three small models trained here (issue 12), built with the same PyTorch references that
make the golden data, so their state_dicts have exactly the names latup reads:

- the VAE: diffusers AutoencoderKL (tools/reference/vae_ref.py's config), FLUX-style (16 latent channels,
  no quant convs); the decoder is exported in ldm names, the patch encoder as encoder.weight / encoder.bias;
- the LUA: tools/lua_ref.LUA (BasicSR SwinIR trunk + heads.x2 / heads.x4), released layout;
- the pixel SwinIR x2: tools/swinir_ref.SwinIRPadded (BasicSR's SwinIR, classic pixelshuffle),
  the same trunk size as the LUA.
"""
import os
import sys
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), d) for d in ("reference", "golden")]
import lua_ref  # noqa: E402
import swinir_ref  # noqa: E402
import vae_ref  # noqa: E402

warnings.filterwarnings("ignore", message="torch.meshgrid")
warnings.filterwarnings("ignore", category=FutureWarning)

# The decoder. GroupNorm has 32 groups (latup's and diffusers'), and norm_out sits right before
# conv_out: with c channels per group only the pattern across those c channels survives it where
# the image is flat. At 1 channel per group (width 32) a flat crop decodes to conv_out's bias
# whatever its colour; at 2 (width 64) the first run still decoded grey pictures (held-out PSNR
# 12-20 dB after 700 steps). 128 at full resolution gives 4 per group, as real VAEs have; one
# ResnetBlock per level (layers_per_block 0) pays for that width.
VAE_CFG = dict(latent_channels=16, block_out_channels=(128, 64, 64, 128), layers_per_block=0,
               norm_num_groups=32, post_quant_conv=False, scaling_factor=1.0, shift_factor=0.0)
# The encoder (committed in F32 beside the F16 decoder since issue 22): one 8x8 stride-8 convolution, 3 -> 32 channels
# (16 means, 16 log-variances), initialised from a PCA of the training patches (train_vae.py).
# A linear f8 code keeps everything a 16-channel latent can keep of an 8x8x3 patch; a short CPU
# run could not train diffusers' deep encoder to that (issue 20).
ENCODER_PATCH = 8

TRUNK = dict(embed_dim=64, depths=[3, 3], num_heads=[4, 4], window_size=8, mlp_ratio=2.0)
LUA_CFG = dict(in_chans=16, head_feat=64, scales=[2, 4], img_size=32, **TRUNK)
SWINIR_CFG = dict(upscale=2, upsampler="pixelshuffle", img_size=32, **TRUNK)


def make_vae():
    """diffusers AutoencoderKL (decoder: VAE_CFG) whose encoder is the linear patch code
    (ENCODER_PATCH); weights as diffusers initialises them (train_vae.py sets its own start)."""
    torch.manual_seed(0)
    vae = vae_ref.make_diffusers_vae(VAE_CFG)
    vae.encoder = torch.nn.Conv2d(3, 2 * VAE_CFG["latent_channels"], ENCODER_PATCH,
                                  stride=ENCODER_PATCH)
    return vae


def make_lua():
    return lua_ref.LUA(**LUA_CFG)


def make_swinir():
    case = dict(upscale=SWINIR_CFG["upscale"], upsampler=SWINIR_CFG["upsampler"],
                trunk={k: SWINIR_CFG[k] for k in ("embed_dim", "depths", "num_heads",
                                                   "window_size", "mlp_ratio", "img_size")})
    return swinir_ref.make_swinir(case)


def vae_decoder_ldm_state(vae):
    """diffusers AutoencoderKL -> ldm-named decoder tensors (float32 numpy), name-sorted."""
    sd = {k: v.detach().float().numpy() for k, v in vae.state_dict().items()
          if k.startswith("decoder.")}
    ldm = vae_ref.from_diffusers_state(sd, VAE_CFG)
    assert len(ldm) == len(vae_ref.ldm_decoder_layout(VAE_CFG)), "decoder names do not map"
    return dict(sorted(ldm.items()))


# ---- the committed files (tools/train/export.py writes them) ---------------------------------
TRAINED = os.path.join(os.path.dirname(os.path.dirname(HERE)), "ref_data", "trained")
FILES = dict(vae=os.path.join(TRAINED, "vae.ldm.safetensors.gz"),
             lua=os.path.join(TRAINED, "lua_x2x4.safetensors.gz"),
             swinir=os.path.join(TRAINED, "swinir_x2.safetensors.gz"))


def _load_tensors(path):
    import st_io
    t, meta, _ = st_io.load(path)
    return {k: torch.from_numpy(st_io.as_float(dt, a).copy()) for k, (dt, _, a) in t.items()}, meta


def load_trained(kind):
    """The committed trained model as the fp32 PyTorch reference (exactly the stored values),
    eval mode. kind: vae (a diffusers AutoencoderKL whose decoder is the committed one and whose
    encoder is the committed patch encoder), lua, swinir (SwinIRPadded)."""
    sd, _ = _load_tensors(FILES[kind])
    if kind == "vae":
        m = make_vae()
        dec = vae_ref.make_diffusers_vae(VAE_CFG, {k: v.numpy() for k, v in sd.items()
                                                   if k.startswith("decoder.")})
        m.decoder.load_state_dict(dec.decoder.state_dict())
        m.encoder.load_state_dict({"weight": sd["encoder.weight"], "bias": sd["encoder.bias"]})
    elif kind == "lua":
        m = make_lua()
        m.load_state_dict(sd, strict=True)
    else:
        m = make_swinir()
        m.net.load_state_dict(sd, strict=True)
    return m.eval()


def load_encoder():
    """The trained VAE, encoder and decoder, as committed (ref_data/trained/vae.ldm.safetensors.gz):
    the latents and decodes latup sees."""
    return load_trained("vae")
