"""Generate ref_data/vae/: seeded random-weight VAEs (AutoencoderKL: decoder and encoder) and golden
tensors, golden_<case> for the decoder and golden_enc_<case> for the encoder.

    tools/.venv/bin/python tools/golden/make_vae_golden.py             # all cases into ref_data/vae/
    tools/.venv/bin/python tools/golden/make_vae_golden.py --out DIR --case sd_small
    tools/.venv/bin/python tools/golden/make_vae_golden.py --keep-decoder-goldens   # see below

--keep-decoder-goldens leaves the committed decoder goldens as they are and checks them against
this run instead (fp32 forwards differ in the last bits from one CPU / BLAS build to another; the
committed ones came from an earlier machine and must not churn when only the encoder is added).

The reference is diffusers' AutoencoderKL (version pinned in tools/ci/setup_env.sh), built from a
config (nothing is downloaded), with forward hooks that record ldm-named tensors. Weights come
from the bit-exact splitmix64 generator of tools/reference/vae_ref.py (spec: tools/README.md "VAE").
Deterministic: same software -> same bytes (one thread, fixed seeds, no date, gzip mtime 0).
"""
import argparse
import copy
import hashlib
import io
import json
import os
import platform
import re
import sys
import warnings
import zlib
from collections import OrderedDict

import numpy as np
import torch

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import golden_report  # noqa: E402
import st_io  # noqa: E402
import vae_ref  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR = "tools/golden/make_vae_golden.py"
PTH_MAX = 500_000  # write the .pth plain below this size, gzip-compressed above

FAMILIES = {  # docs/spec/vae.md "Families"
    "sd1": dict(scaling_factor=0.18215, shift_factor=0.0),
    "flux": dict(scaling_factor=0.3611, shift_factor=0.1159),
}

CASES = {
    # SD 1.x-style: 4 latent channels, post_quant_conv; odd non-square latent (N = 35 > 16);
    # weights in four naming variants (+ a .pth single-file checkpoint).
    "sd_small": dict(
        seed=4001, family="sd1", Lw=15, latent=(1, 4, 7, 5),
        cfg=dict(latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                 norm_num_groups=32, post_quant_conv=True),
        files=[("ldm", "F16"), ("ldm_prefixed", "F16"), ("diffusers", "F16"),
               ("diffusers_old", "F16"), ("pth", "F16")],
        skip=[], image=(1, 3, 37, 29), enc_skip=[]),
    # FLUX-style: 16 latent channels, no post_quant_conv; ldm names like ae.safetensors (BF16),
    # diffusers names (F32).
    "flux_small": dict(
        seed=4002, family="flux", Lw=15, latent=(1, 16, 8, 6),
        cfg=dict(latent_channels=16, block_out_channels=(32, 64), layers_per_block=1,
                 norm_num_groups=32, post_quant_conv=False),
        files=[("ldm", "BF16"), ("diffusers", "F32")],
        skip=[], image=(2, 3, 29, 38), enc_skip=[]),
    # The released widths (FLUX/SD3 style) on a 4x4 latent; weights are NOT stored (49.5M params):
    # the C test regenerates them with the generator. Dumps dropped to keep the file small.
    "real_widths": dict(
        seed=4003, family="flux", Lw=15, latent=(1, 16, 4, 4),
        cfg=dict(latent_channels=16, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                 norm_num_groups=32, post_quant_conv=False),
        files=[],
        skip=[r"up\.1\.block\.1", r"up\.1\.upsample", r"up\.0\.block\.[12]", r"norm_out"],
        image=(1, 3, 35, 27),
        enc_skip=[r"encoder\.down\.0\.block\.0", r"encoder\.down\.1\.block\.1"]),
}
# The encoder goldens (golden_enc_<case>.safetensors): "image" is the encoder's input [B,3,H,W],
# odd sizes that are not multiples of 8 (nor of f = 2 for the two-level small cases); enc_skip
# drops dumps (regular expressions on the ldm names) to keep the real widths' file under 2 MB.
# Tensors that hold every batch element; the other intermediates hold element 0 only.
ENC_FULL_BATCH = ("input", "encoder.conv_out", "quant_conv", "mean", "logvar")

# Unrelated tensors of a single-file SD checkpoint that a VAE loader must ignore
# (name, shape, dtype); values from the same generator, position_ids = arange.
PREFIXED_EXTRAS = [
    ("cond_stage_model.transformer.text_model.embeddings.position_ids", (1, 77), "I64"),
    ("model.diffusion_model.input_blocks.0.0.weight", (32, 4, 3, 3), "F16"),
    ("model.diffusion_model.input_blocks.0.0.bias", (32,), "F16"),
    ("model_ema.decay", (1,), "F32"),  # 0-d in real checkpoints; st_io cannot write 0-d
]


def full_cfg(case):
    c = dict(case["cfg"])
    c.update(FAMILIES[case["family"]])
    return c


def cfg_json(case):
    c = full_cfg(case)
    b, zc, h, w = case["latent"]
    nl = len(c["block_out_channels"])
    d = dict(family=case["family"], latent_channels=c["latent_channels"],
             block_out_channels=list(c["block_out_channels"]),
             layers_per_block=c["layers_per_block"],
             resnets_per_level=c["layers_per_block"] + 1, norm_num_groups=c["norm_num_groups"],
             norm_eps=vae_ref.GN_EPS, post_quant_conv=c["post_quant_conv"],
             scaling_factor=c["scaling_factor"], shift_factor=c["shift_factor"],
             attention="one head over all h*w positions, scale C^-0.5 (C = top width)",
             latent_shape=[b, zc, h, w], image_shape=[b, 3, h << (nl - 1), w << (nl - 1)])
    return json.dumps(d, separators=(",", ":"))


def versions():
    import diffusers
    return dict(torch_version=torch.__version__, diffusers_version=diffusers.__version__,
                numpy_version=np.__version__, python_version=platform.python_version())


def script_sha():
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference", "vae_ref.py")):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def weights_meta(meta, files, w, Lw, spec, not_stored):
    """A golden's weight metadata: the files per variant (else `not_stored`), the generator's text,
    and per tensor of w its checksum and rule."""
    meta["weights"] = json.dumps({v: f for v, f, _ in files}) if files else not_stored
    meta["weights_generator"] = spec
    meta["weights_checksums"] = json.dumps({k: vae_ref.checksum(v) for k, v in w.items()},
                                           separators=(",", ":"))
    meta["weights_generator_table"] = json.dumps(
        {k: list(vae_ref.tensor_rule(k, v.shape, Lw)) for k, v in w.items()}, separators=(",", ":"))


def common_meta(name, case):
    m = dict(case=name, config=cfg_json(case), seed=str(case["seed"]),
             weights_Lw=str(case["Lw"]), generator=GENERATOR + " (+ tools/reference/vae_ref.py)",
             generator_sha256=script_sha(), date="not recorded (deterministic output)",
             reference="diffusers AutoencoderKL (tools/ci/setup_env.sh pins the version), "
                       "AttnProcessor (torch 1.13: no SDPA); docs/spec/vae.md")
    m.update(versions())
    return m


# ---------------------------------------------------------------------------------------------
# weight files

def _gen_extra(name, shape, seed, Lw):
    if name.endswith("position_ids"):
        return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    if name == "model_ema.decay":
        return np.full(shape, 0.9999, dtype=np.float32)
    return vae_ref.gen_tensor(name, shape, seed, Lw)


def variant_tensors(variant, case, w, dtype):
    """list of (name, array, dtype) for one naming variant (name-sorted, like real files); w: the
    ldm-named weights of the whole VAE (decoder + post_quant_conv, encoder + quant_conv)."""
    cfg = full_cfg(case)
    seed, Lw = case["seed"], case["Lw"]
    out = []
    if variant == "ldm":
        out = [(k, v, dtype) for k, v in w.items()]
    elif variant in ("ldm_prefixed", "pth"):
        out = [("first_stage_model." + k, v, dtype) for k, v in w.items()]
        for n, s, dt in PREFIXED_EXTRAS:
            if variant == "pth" and dt != "F16":
                continue
            out.append((n, _gen_extra(n, s, seed, Lw), dt))
    elif variant in ("diffusers", "diffusers_old"):
        d = vae_ref.to_diffusers_state(w, cfg, old_attention=(variant == "diffusers_old"))
        out = [(k, v, dtype) for k, v in d.items()]
    else:
        raise ValueError(variant)
    return sorted(out, key=lambda t: t[0])


def pth_bytes(tensors):
    """torch.save of {"state_dict": OrderedDict(name -> half tensor)} (zip format)."""
    sd = OrderedDict()
    for n, v, dt in tensors:
        assert dt == "F16"
        st_io.encode(v, "F16")
        sd[n] = torch.from_numpy(np.ascontiguousarray(v.astype(np.float16))).clone()
    bio = io.BytesIO()
    torch.save({"state_dict": sd}, bio)
    return bio.getvalue()


def write_weight_files(name, case, w, outdir):
    cfg = full_cfg(case)
    files = []
    for variant, dtype in case["files"]:
        tensors = variant_tensors(variant, case, w, dtype)
        if variant == "pth":
            data = pth_bytes(tensors)
            fname = f"{name}.ldm.pth"
            if len(data) >= PTH_MAX:
                data = st_io.gzip_bytes(data)
                fname += ".gz"
            with open(os.path.join(outdir, fname), "wb") as f:
                f.write(data)
            files.append((variant, fname, len(data)))
            continue
        meta = dict(format="pt", case=name, config=cfg_json(case), seed=str(case["seed"]),
                    weights_Lw=str(case["Lw"]), weights_dtype=dtype,
                    naming={"ldm": "ldm / original (decoder.*, post_quant_conv.*, encoder.*, "
                                   "quant_conv.*), attention q/k/v/proj_out as 1x1 conv [C,C,1,1]",
                            "ldm_prefixed": "ldm names under 'first_stage_model.' + unrelated "
                                            "tensors to ignore (model.diffusion_model.*, "
                                            "cond_stage_model.*, model_ema.decay [1] F32, "
                                            "position_ids I64)",
                            "diffusers": "diffusers names, attention to_q/to_k/to_v/to_out.0 as "
                                         "Linear [C,C]",
                            "diffusers_old": "older diffusers names, attention query/key/value/"
                                             "proj_attn as Linear [C,C]"}[variant],
                    generator="tools/reference/vae_ref.py gen_tensor (tools/README.md 'VAE')")
        meta["contents"] = ("the whole AutoencoderKL: decoder" +
                            (" + post_quant_conv" if cfg["post_quant_conv"] else "") +
                            ", encoder" + (" + quant_conv" if cfg["post_quant_conv"] else ""))
        fname = f"{name}.{variant}.safetensors.gz"
        size = st_io.save(os.path.join(outdir, fname), tensors, meta, compress=True)
        files.append((variant, fname, size))
    return files


# ---------------------------------------------------------------------------------------------
# verification of the stored files and of the name mapping

def file_to_diffusers(variant, path, cfg):
    """Read a stored weight file back and return a diffusers-named float32 torch dict of the whole
    VAE (decoder, encoder, quant convs); other tensors are dropped."""
    if variant == "pth":
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            import gzip
            data = gzip.decompress(data)
        obj = torch.load(io.BytesIO(data), map_location="cpu")
        raw = {k: v.float() for k, v in obj["state_dict"].items()}
    else:
        tens, _, _ = st_io.load(path)
        raw = {k: torch.from_numpy(np.asarray(st_io.as_float(dt, a), dtype=np.float32)
                                   if dt != "I64" else np.asarray(a))
               for k, (dt, sh, a) in tens.items()}
    parts = ("decoder.", "post_quant_conv.", "encoder.", "quant_conv.")
    if variant in ("ldm", "ldm_prefixed", "pth"):
        pre = "" if variant == "ldm" else "first_stage_model."
        ldm = OrderedDict((k[len(pre):], v) for k, v in raw.items() if k.startswith(pre)
                          and k[len(pre):].startswith(parts))
        return vae_ref.to_diffusers_state(ldm, cfg)          # our mapping (spec table)
    if variant == "diffusers_old":
        old = vae_ref.from_diffusers_state(raw, cfg, old_attention=True, encoder=True)
        return vae_ref.to_diffusers_state(old, cfg)          # our mapping, old spelling
    return {k: v for k, v in raw.items() if k.startswith(parts)}


def verify_files(name, case, files, outdir, w, t32, z, e32, x):
    """Each stored variant, loaded back through the mapping into a fresh diffusers model (every
    tensor of the whole VAE, strictly), must reproduce every golden tensor, the decoder's (t32
    from z) and the encoder's (e32 from x), bit for bit; the mapping is also checked against
    diffusers' own converters (single-file ldm converter, deprecated-attention converter).
    Returns (the decoder golden's check lines, the encoder golden's)."""
    cfg = full_cfg(case)
    report, enc_report = [], []
    for variant, fname, _ in files:
        d = file_to_diffusers(variant, os.path.join(outdir, fname), cfg)
        m = vae_ref.make_diffusers_vae(cfg)
        vae_ref.load_state(m, d, vae_ref.decoder_keys(m) + vae_ref.encoder_keys(m))
        t = vae_ref.run_diffusers(m, cfg, z)
        bad = [k for k in t32 if not torch.equal(t32[k], t[k])]
        assert not bad, f"{name}/{variant}: not bit-identical: {bad}"
        report.append(f"{fname}: all {len(t32)} tensors bit-identical")
        e = vae_ref.run_diffusers_encode(m, cfg, x)
        bad = [k for k in e32 if not torch.equal(e32[k], e[k])]
        assert not bad, f"{name}/{variant}: encoder not bit-identical: {bad}"
        enc_report.append(f"{fname}: all {len(e32)} encoder tensors bit-identical")
    # independent converters (diffusers' own code) agree with our mapping
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    dcfg = vae_ref.diffusers_config(cfg)
    ckpt = {"first_stage_model." + k: torch.from_numpy(v) for k, v in w.items()}
    ckpt["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(32, 4, 3, 3)
    conv = convert_ldm_vae_checkpoint(ckpt, dcfg)
    ours = vae_ref.to_diffusers_state(OrderedDict((k, torch.from_numpy(v)) for k, v in w.items()),
                                      cfg)
    for prefixes, lines in ((("decoder.", "post_quant_conv."), report),
                            (("encoder.", "quant_conv."), enc_report)):
        c = {k: v for k, v in conv.items() if k.startswith(prefixes)}
        o = {k: v for k, v in ours.items() if k.startswith(prefixes)}
        assert o and sorted(c) == sorted(o), set(c) ^ set(o)
        assert all(torch.equal(c[k], o[k]) for k in o)
    m = vae_ref.make_diffusers_vae(cfg)
    old = vae_ref.to_diffusers_state(
        OrderedDict((k, torch.from_numpy(v)) for k, v in w.items()), cfg, old_attention=True)
    old = OrderedDict(old)
    m._convert_deprecated_attention_blocks(old)
    assert sorted(old) == sorted(ours) and all(torch.equal(old[k], ours[k]) for k in ours)
    report.append("mapping == diffusers.loaders.single_file_utils.convert_ldm_vae_checkpoint "
                  "(decoder keys, values) and old names == ModelMixin._convert_deprecated_"
                  "attention_blocks")
    enc_report.append("mapping == diffusers.loaders.single_file_utils.convert_ldm_vae_checkpoint "
                      "(encoder and quant_conv keys, values) and old names == ModelMixin."
                      "_convert_deprecated_attention_blocks")
    return report, enc_report


# ---------------------------------------------------------------------------------------------
# the encoder's golden data

IMAGE_DOC = ("latup VAE test image v1: numpy default_rng([seed, crc32(b'image')]); per batch "
             "element and channel an offset U(-0.3, 0.3) plus 6 cosines a cos(2 pi (fy y/H + fx x/W) "
             "+ p), a ~ U(0.05, 0.25), fy, fx ~ U(0, 3), p ~ U(0, 2 pi), drawn in that order, plus "
             "N(0, 0.03) noise; quantised like an 8-bit PNG: k = clip(round((v + 1) * 127.5), 0, "
             "255), value = float32(k) / float32(255) * 2 - 1 in float32 (a PNG's [0,1] as 2x - 1)")


def make_image(shape, seed):
    """[B,3,H,W] float32 in [-1, 1], a smooth picture-like image on 8-bit levels (IMAGE_DOC)."""
    rng = np.random.default_rng([seed, zlib.crc32(b"image")])
    B, C, H, W = shape
    y = np.arange(H, dtype=np.float64)[:, None] / H
    x = np.arange(W, dtype=np.float64)[None, :] / W
    v = np.empty(shape, dtype=np.float64)
    for b in range(B):
        for c in range(C):
            t = np.full((H, W), rng.uniform(-0.3, 0.3))
            for _ in range(6):
                a, fy, fx, p = rng.uniform(0.05, 0.25), rng.uniform(0, 3), rng.uniform(0, 3), \
                    rng.uniform(0, 2 * np.pi)
                t = t + a * np.cos(2 * np.pi * (fy * y + fx * x) + p)
            v[b, c] = t + 0.03 * rng.standard_normal((H, W))
    k = np.clip(np.round((v + 1.0) * 127.5), 0, 255).astype(np.float32)
    img = (k / np.float32(255.0)) * np.float32(2.0) - np.float32(1.0)
    assert img.dtype == np.float32 and img.min() >= -1.0 and img.max() <= 1.0
    return torch.from_numpy(np.ascontiguousarray(img))


def independent_encoder_check(cfg, we, x, e32, e64):
    """The encoder written from CompVis' ldm model.py (vae_ref.LdmEncoder, ldm names) vs diffusers,
    on every recorded tensor: worst abs difference in fp32 and in fp64."""
    ldm = vae_ref.make_ldm_encoder(cfg, we)
    with torch.no_grad():
        r32 = ldm(x)
        r64 = copy.deepcopy(ldm).double()(x.double())
    assert sorted(r32) == sorted(e32), set(r32) ^ set(e32)
    d32 = max(float((r32[k] - e32[k]).abs().max()) for k in e32)
    d64 = max(float((r64[k] - e64[k]).abs().max()) for k in e64)
    m32 = float((r32["mean"] - e32["mean"]).abs().max())
    print(f"  independent ldm encoder vs diffusers (all {len(e32)} tensors): fp32 {d32:.3e} "
          f"(mean {m32:.3e}), fp64 {d64:.3e}")
    assert d64 < 1e-12 and d32 < 1e-4, (d32, d64)
    return [f"independent ldm-style encoder (tools/reference/vae_ref.py LdmEncoder, from CompVis "
            f"ldm model.py) vs diffusers, worst over all {len(e32)} tensors: fp32 {d32:.3e}, "
            f"fp64 {d64:.3e}"]


def enc_cfg_json(case, sizes):
    c = full_cfg(case)
    B, _, H, W = case["image"]
    zc = c["latent_channels"]
    h, w = sizes[-1]
    d = dict(family=case["family"], latent_channels=zc,
             block_out_channels=list(c["block_out_channels"]),
             layers_per_block=c["layers_per_block"], resnets_per_level=c["layers_per_block"],
             norm_num_groups=c["norm_num_groups"], norm_eps=vae_ref.GN_EPS,
             quant_conv=c["post_quant_conv"], scaling_factor=c["scaling_factor"],
             shift_factor=c["shift_factor"],
             downsample="zero pad (0,1,0,1) (one column right, one row bottom), 3x3 conv stride 2",
             attention="one head over all h*w positions, scale C^-0.5 (C = top width)",
             image_shape=[B, 3, H, W], moments_shape=[B, 2 * zc, h, w], latent_shape=[B, zc, h, w])
    return json.dumps(d, separators=(",", ":"))


ENC_GENERATOR_SPEC = vae_ref.GENERATOR_SPEC.replace(
    'every decoder tensor under its ldm name WITHOUT any prefix (e.g. "decoder.conv_in.weight",\n'
    '"decoder.mid.attn_1.q.weight", "post_quant_conv.bias"), with its ldm shape',
    'every encoder tensor under its ldm name WITHOUT any prefix (e.g. "encoder.conv_in.weight",\n'
    '"encoder.mid.attn_1.q.weight", "quant_conv.bias"), with its ldm shape')
assert ENC_GENERATOR_SPEC != vae_ref.GENERATOR_SPEC


def write_enc_golden(name, case, outdir, files, we, e32, e64, checks, summary):
    cfg = full_cfg(case)
    order = vae_ref.encoder_tensor_order(cfg)
    assert sorted(order) == sorted(e32), set(order) ^ set(e32)
    skips = [re.compile(p) for p in case["enc_skip"]]
    dropped = [k for k in order if any(p.fullmatch(k) for p in skips)]
    order = [k for k in order if k not in dropped]
    # the sizes diffusers produces: each level's output (conv_in, then after each downsample)
    nl = len(cfg["block_out_channels"])
    sizes = [list(e32["encoder.conv_in"].shape[2:])] + [
        list(e32[f"encoder.down.{i}.downsample"].shape[2:]) for i in range(nl - 1)]
    H, W = case["image"][2:]
    f = 2 ** (nl - 1)
    assert sizes[-1] == [H // f, W // f] == list(e32["mean"].shape[2:]), (sizes, H, W)
    fp64, tensors = {}, []
    golden_report.print_header(28, 20)
    for k in order:
        a, b = e32[k], e64[k]
        if k not in ENC_FULL_BATCH:
            a, b = a[:1], b[:1]
        d, r = golden_report.fp64_error(a, b)
        fp64[k] = [d, r]
        tensors.append((k, a.contiguous().numpy(), "F32"))
        golden_report.print_row(k, a.shape, r, d, 28, 20)
        if k != "input":
            golden_report.add_worst(summary, kind_of(k), d, r)
    meta = common_meta(name, case)
    meta["config"] = enc_cfg_json(case, sizes)
    weights_meta(meta, files, we, case["Lw"], ENC_GENERATOR_SPEC,
                 "not stored: regenerate the encoder with weights_generator (seed, weights_Lw) and "
                 "check weights_checksums (encoder tensors only: load it as an encoder-only VAE file)")
    meta["input_shape"] = json.dumps(list(case["image"]))
    meta["input"] = IMAGE_DOC
    meta["sizes"] = json.dumps(dict(
        image=[H, W], levels=sizes, latent=sizes[-1],
        rule=f"each stride-2 downsampling pads one zero row and column (bottom, right): "
             f"n -> floor(n / 2); latent = floor(H / {f}) x floor(W / {f}) (diffusers "
             f"AutoencoderKL.encode on the image as given, no resize)"), separators=(",", ":"))
    meta["dumps"] = ("ldm names, forward order, every tensor [B,C,h,w]: encoder.conv_in; "
                     "encoder.down.i.block.j = ResnetBlock output; encoder.down.i.downsample = "
                     "after the (0,1,0,1) pad + 3x3 stride-2 conv; encoder.mid.block_1, "
                     "encoder.mid.attn_1 (block output incl. residual), encoder.mid.block_2; "
                     "encoder.norm_out = SiLU(GroupNorm) (conv_out input); encoder.conv_out = the "
                     "moments [B,2zc,h,w]" + ("; quant_conv = its output (the moments)"
                                              if cfg["post_quant_conv"] else "") +
                     "; mean = latent_dist.mean (moments[:, :zc]); logvar = latent_dist.logvar "
                     "(moments[:, zc:] clamped to [-30, 20])")
    meta["dumps_batch"] = (f"{', '.join(k for k in ENC_FULL_BATCH if k in order)} hold all "
                           f"{case['image'][0]} batch elements; every other tensor element 0 only")
    meta["dumps_dropped"] = json.dumps(dropped)
    meta["fp64_maxabs"] = json.dumps(fp64, separators=(",", ":"))
    meta["fp64_maxabs_doc"] = ("name -> [max |fp32 forward - fp64 forward|, max |fp64 value|] over "
                               "the stored elements; fp64 = the same diffusers model after "
                               ".double() with upcast_softmax off (it would round the scores to "
                               "fp32)")
    meta["cross_checks"] = json.dumps(checks)
    gpath = os.path.join(outdir, f"golden_enc_{name}.safetensors")
    gsize = st_io.save(gpath, tensors, meta)
    print(f"  -> {os.path.relpath(gpath, ROOT)}: {gsize:,} bytes, sizes {sizes}"
          + (f" (dropped {dropped})" if dropped else ""))
    return gpath, gsize


def compare_kept_golden(gpath, tensors, meta, fp64):
    """--keep-decoder-goldens: the committed decoder golden is left as it is; it must hold the same
    tensors (names, shapes, input bits) and the same weights (checksums) as this run, and each
    tensor must differ from this run's by at most the sum of the two fp32-vs-fp64 errors (its
    fp64_maxabs and this run's: both are fp32 roundings of the same fp64 forward; fp32 forwards
    differ in the last bits between CPUs / BLAS builds). Returns the file's size."""
    old, ometa, onames = st_io.load(gpath)
    assert onames == [k for k, _, _ in tensors], (gpath, onames)
    assert ometa["weights_checksums"] == meta["weights_checksums"], f"{gpath}: weights differ"
    ofp64 = json.loads(ometa["fp64_maxabs"])
    worst, wname = 0.0, ""
    for k, a, _ in tensors:
        o = np.asarray(old[k][2], dtype=np.float32).reshape(old[k][1])
        assert o.shape == a.shape, (k, o.shape, a.shape)
        d = float(np.abs(o.astype(np.float64) - a).max())
        if k == "input":
            assert d == 0.0, f"{gpath}: input differs"
        lim = fp64[k][0] + ofp64[k][0] + 1e-9
        assert d <= lim, f"{gpath}: {k} differs by {d:.3e} > {lim:.3e}"
        if d / lim > worst:
            worst, wname = d / lim, k
    print(f"  kept {os.path.relpath(gpath, ROOT)} (not rewritten): same names, shapes, input and "
          f"weights; every tensor within the sum of the two fp32-vs-fp64 errors of this run's "
          f"(worst {worst:.2f} of that bound, {wname})")
    return os.path.getsize(gpath)


# ---------------------------------------------------------------------------------------------

def kind_of(name):
    return re.sub(r"\.\d+(?=\.|$)", ".*", name)


def make_case(name, outdir, summary, enc_summary, keep_decoder=False):
    case = CASES[name]
    cfg = full_cfg(case)
    os.makedirs(outdir, exist_ok=True)
    w = vae_ref.gen_weights(cfg, case["seed"], case["Lw"])
    we = vae_ref.gen_encoder_weights(cfg, case["seed"], case["Lw"])
    nparams = sum(v.size for v in w.values())
    print(f"[{name}] {nparams:,} decoder parameters, {sum(v.size for v in we.values()):,} encoder "
          f"parameters, config {cfg_json(case)}")
    model = vae_ref.make_diffusers_vae(cfg, OrderedDict(list(w.items()) + list(we.items())))
    model64 = vae_ref.prepare_fp64(copy.deepcopy(model))
    rng = np.random.default_rng([case["seed"], zlib.crc32(b"input")])
    z = torch.from_numpy(rng.standard_normal(case["latent"], dtype=np.float32))
    t32 = vae_ref.run_diffusers(model, cfg, z)
    t64 = vae_ref.run_diffusers(model64, cfg, z.double())
    order = vae_ref.tensor_order(cfg)
    assert sorted(order) == sorted(t32), set(order) ^ set(t32)

    # independent ldm-style decoder (from the spec) vs diffusers
    ldm = vae_ref.make_ldm_decoder(cfg, w)
    with torch.no_grad():
        o32 = ldm(z)
        o64 = copy.deepcopy(ldm).double()(z.double())
    ind32 = float((o32 - t32["out"]).abs().max())
    ind64 = float((o64 - t64["out"]).abs().max())
    print(f"  independent ldm decoder vs diffusers: fp32 {ind32:.3e}, fp64 {ind64:.3e}")
    assert ind64 < 1e-12 and ind32 < 1e-4, (ind32, ind64)

    x = make_image(case["image"], case["seed"])
    e32 = vae_ref.run_diffusers_encode(model, cfg, x)
    e64 = vae_ref.run_diffusers_encode(model64, cfg, x.double())
    enc_ind = independent_encoder_check(cfg, we, x, e32, e64)

    files = write_weight_files(name, case, OrderedDict(list(w.items()) + list(we.items())), outdir)
    checks, enc_checks = (verify_files(name, case, files, outdir,
                                       OrderedDict(list(w.items()) + list(we.items())), t32, z, e32, x)
                          if files else ([], []))
    for c in checks + enc_checks:
        print("  verified:", c)

    skips = [re.compile(p) for p in case["skip"]]
    dropped = [k for k in order if any(p.fullmatch(k) for p in skips)]
    order = [k for k in order if k not in dropped]
    fp64 = {}
    tensors = []
    golden_report.print_header(24, 20)
    for k in order:
        a = t32[k]
        d, r = golden_report.fp64_error(a, t64[k])
        fp64[k] = [d, r]
        tensors.append((k, a.contiguous().numpy(), "F32"))
        golden_report.print_row(k, a.shape, r, d, 24, 20)
        golden_report.add_worst(summary, kind_of(k), d, r)
    meta = common_meta(name, case)
    weights_meta(meta, files, w, case["Lw"], vae_ref.GENERATOR_SPEC,
                 "not stored: regenerate with weights_generator (seed, weights_Lw) and check "
                 "weights_checksums")
    meta["input_shape"] = json.dumps(list(case["latent"]))
    meta["dumps"] = ("ldm names, forward order; every tensor [B,C,h,w] (B=1) incl. mid.attn_1."
                     "{norm,q,k,v,attn} (q/k/v/attn: channel c of position n=y*w+x at [0,c,y,x]);"
                     " mid.attn_1 = block output incl. residual; up.L.upsample = after nearest x2 "
                     "+ conv; norm_out = SiLU(GroupNorm) (conv_out input); out = conv_out, raw")
    meta["dumps_dropped"] = json.dumps(dropped)
    meta["fp64_maxabs"] = json.dumps(fp64, separators=(",", ":"))
    meta["fp64_maxabs_doc"] = ("name -> [max |fp32 forward - fp64 forward|, max |fp64 value|]; "
                               "fp64 = the same diffusers model after .double() with "
                               "upcast_softmax off (it would round the scores to fp32)")
    meta["cross_checks"] = json.dumps(
        checks + [f"independent ldm-style decoder (tools/reference/vae_ref.py LdmDecoder, from the spec) "
                  f"vs diffusers out: fp32 {ind32:.3e}, fp64 {ind64:.3e}"])
    gpath = os.path.join(outdir, f"golden_{name}.safetensors")
    if keep_decoder and os.path.exists(gpath):
        gsize = compare_kept_golden(gpath, tensors, meta, fp64)
    else:
        gsize = st_io.save(gpath, tensors, meta)
        print(f"  -> {os.path.relpath(gpath, ROOT)}: {gsize:,} bytes"
              + (f" (dropped {dropped})" if dropped else ""))
    epath, esize = write_enc_golden(name, case, outdir, files, we, e32, e64, enc_checks + enc_ind,
                                    enc_summary)
    return [(os.path.join(outdir, f), s) for _, f, s in files] + [(gpath, gsize), (epath, esize)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "ref_data", "vae"))
    ap.add_argument("--case", action="append", choices=list(CASES))
    ap.add_argument("--keep-decoder-goldens", action="store_true",
                    help="leave existing golden_<case>.safetensors (the decoder's) as they are and "
                         "check them against this run instead of rewriting them")
    args = ap.parse_args()
    torch.set_num_threads(1)  # fixed reduction order -> reproducible bytes
    torch.manual_seed(0)
    vae_ref.self_check()
    summary, enc_summary, files = {}, {}, []
    for name in args.case or list(CASES):
        files += make_case(name, args.out, summary, enc_summary, args.keep_decoder_goldens)
    golden_report.print_worst(summary, 24, "all cases")
    golden_report.print_worst(enc_summary, 28, "all cases, encoder")
    golden_report.print_files(files, ROOT, 50)


if __name__ == "__main__":
    main()
