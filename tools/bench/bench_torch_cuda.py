"""PyTorch CUDA timings on the weights build-cuda/bench_cuda --keep-weights DIR wrote, for
tools/bench/verify_cuda.sh: LUA (tools/reference/lua_ref.py: BasicSR's SwinIR trunk + the heads) x2 and x4 on
64x64 and 128x128 latents, and the real-width VAE decoder (tools/reference/vae_ref.py LdmDecoder, the ldm
decoder written from the spec) on a 128x128 latent. fp32 with TF32 off (as latup's CUDA path), the
median of --runs calls after one warm-up, each call = latent copied to the GPU, forward,
result copied back, synchronised (what bench_cuda times).

    python3 tools/bench/bench_torch_cuda.py --weights DIR [--runs 5] [--out FILE]
    python3 tools/bench/bench_torch_cuda.py --weights DIR --device cpu --quick   (a dry run of the plumbing)

Exits 2 with one line when torch, CUDA, numpy or BasicSR's swinir_arch.py is missing.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="16x16 LUA and 8x8 VAE latents, one run")
    a = ap.parse_args()
    lua_sizes, vae_size = ((16,), 8) if a.quick else ((64, 128), 128)
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print(f"pytorch: {e}: PyTorch timings skipped")
        return 2
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print(f"pytorch: torch {torch.__version__} sees no CUDA device: PyTorch timings skipped")
        return 2
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    import st_io
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    lines = []

    def emit(what, ts):
        ts = sorted(ts)
        line = (f"{what:<28} {'torch' if cuda else 'torch-cpu':<4} median {1e3 * ts[len(ts) // 2]:9.1f} ms  min {1e3 * ts[0]:9.1f} ms  "
                f"max {1e3 * ts[-1]:9.1f} ms  ({len(ts)} runs)")
        print(line, flush=True)
        lines.append(line)

    def timed(fn, x):
        ts = []
        for r in range(-1, 1 if a.quick else a.runs):
            sync()
            t0 = time.perf_counter()
            y = fn(torch.from_numpy(x).to(dev)).cpu()
            sync()
            if r >= 0:
                ts.append(time.perf_counter() - t0)
            del y
        return ts

    def state(path):
        t, _, _ = st_io.load(path)
        return {k: torch.from_numpy(np.array(st_io.as_float(dt, arr))) for k, (dt, shp, arr) in t.items()}

    rng = np.random.default_rng(42)
    try:
        import lua_ref
        m = lua_ref.LUA(**lua_ref.RELEASED_CONFIG)
    except (FileNotFoundError, ImportError) as e:
        print(f"pytorch: LUA reference unavailable ({e}): LUA timings skipped")
        m = None
    if m is not None:
        missing, unexpected = m.load_state_dict(state(os.path.join(a.weights, "lua_released.safetensors")),
                                                strict=False)
        # the file holds every parameter; only BasicSR's computed buffers may be missing
        bad = [k for k in missing if not k.endswith(("relative_position_index", "attn_mask"))]
        if bad or unexpected:
            print(f"pytorch: LUA weights do not match the reference: missing {bad[:3]}, unexpected {unexpected[:3]}")
            return 1
        m = m.to(dev).eval()
        with torch.no_grad():
            for size in lua_sizes:
                x = rng.uniform(-1, 1, (1, 16, size, size)).astype(np.float32)
                for scale in (2, 4):
                    emit(f"LUA x{scale} {size}x{size}", timed(lambda t: m(t, scale), x))
        del m
        torch.cuda.empty_cache()
    import vae_ref
    import json
    meta = st_io.load(os.path.join(HERE, "..", "..", "ref_data", "vae", "golden_real_widths.safetensors"))[1]
    cfg = json.loads(meta["config"])
    v = vae_ref.make_ldm_decoder(cfg, state(os.path.join(a.weights, "vae_real_widths.safetensors")))
    v = v.to(dev)
    with torch.no_grad():
        z = rng.uniform(-1, 1, (1, 16, vae_size, vae_size)).astype(np.float32)
        emit(f"VAE decode {vae_size}x{vae_size} -> {8 * vae_size}x{8 * vae_size}", timed(v, z))
    if a.out:
        with open(a.out, "a") as f:
            gpu = torch.cuda.get_device_name(0) if cuda else "cpu"
            f.write(f"# torch {torch.__version__}, CUDA {torch.version.cuda}, {gpu}\n")
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
