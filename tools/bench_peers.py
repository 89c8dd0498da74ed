"""latup next to ONNX Runtime and PyTorch on the same random-weight models, in one run, on the machine
at hand (run it through tools/bench_peers.sh, which makes the environment and builds latup).

For each work item (LUA released config x2/x4 at 64x64 and 128x128; the VAE decoder at the FLUX
widths at 64x64 and 128x128) it times, with the same thread count and the same weights:
  - latup: build/bench_lua / build/bench_vae loading the very checkpoint the peers use;
  - ONNX Runtime (CPU execution provider, all graph optimisations) on the model exported from the
    PyTorch reference;
  - PyTorch itself (eager, inference mode);
and prints the medians, the ratios, the FLOP count, and the sgemm ceiling measured in the same run
(build/bench_gemm: a 2048^3 product cut in tiles, one single-threaded sgemm per tile), with the
CPU model and ISA. A benchmark, not a test: nothing is asserted.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
warnings.filterwarnings("ignore")

import torch  # noqa: E402

import lua_ref  # noqa: E402
import st_io  # noqa: E402
import vae_ref  # noqa: E402
import weightgen  # noqa: E402

LUA_SEED, VAE_SEED, LW = 9001, 9002, 15


def cpu_info():
    model, flags = "unknown", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    isa = "AVX-512" if " avx512f" in flags else ("AVX2" if " avx2" in flags else "SSE")
    return model, isa


def median(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# ---- models -------------------------------------------------------------------------------------

def lua_model(workdir):
    cfg = dict(lua_ref.RELEASED_CONFIG)
    path = os.path.join(workdir, "lua_released.safetensors")
    with torch.no_grad():
        m = lua_ref.make_model(cfg)
        tensors = []
        for name, p in m.named_parameters():
            v = weightgen.gen_weight(name, tuple(p.shape), LUA_SEED, LW)
            p.copy_(torch.from_numpy(v))
            tensors.append((name, v, "F32"))
    m.eval()
    if not os.path.exists(path):
        st_io.save(path, tensors, {"note": "random weights for tools/bench_peers.py"})
    return m, path


class LuaX(torch.nn.Module):
    """One upscale: trunk then the scale's head (the reference's own forward)."""

    def __init__(self, m, scale):
        super().__init__()
        self.m, self.scale = m, scale

    def forward(self, x):
        return self.m(x, self.scale)


def vae_model(workdir):
    cfg = dict(latent_channels=16, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
               norm_num_groups=32, post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159)
    w = vae_ref.gen_weights(cfg, VAE_SEED, LW)
    path = os.path.join(workdir, "vae_flux_widths.safetensors")
    if not os.path.exists(path):
        st_io.save(path, [(k, v, "F32") for k, v in w.items()], {"note": "random weights for tools/bench_peers.py"})
    m = vae_ref.make_diffusers_vae(cfg, w)
    return m, path


class VaeDecode(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, z):
        return self.m.decode(z).sample


def export_onnx(module, x, path):
    if os.path.exists(path):
        return path
    with torch.no_grad():
        try:
            torch.onnx.export(module, (x,), path, opset_version=17, input_names=["x"], output_names=["y"],
                              dynamo=False)
        except (TypeError, RuntimeError) as e:  # newer torch: the dynamo exporter only
            print(f"  (TorchScript ONNX export unavailable: {str(e).splitlines()[0]}; using the dynamo exporter)")
            torch.onnx.export(module, (x,), path, opset_version=18, input_names=["x"], output_names=["y"],
                              dynamo=True, external_data=True)
    return path


def ort_time(path, x, threads, runs):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return median(lambda: sess.run(None, feed), runs), sess.run(None, feed)[0]


def torch_time(module, x, runs):
    with torch.inference_mode():
        t = median(lambda: module(x), runs)
        return t, module(x).numpy()


def latup_time(cmd):
    """(median seconds, FLOP) from build/bench_lua or bench_vae: one FLOP count, latup's."""
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
    t = re.search(r"median ([0-9.]+) s", out.stdout)
    g = re.search(r"([0-9.]+) GFLOP ->", out.stdout)
    return float(t.group(1)), float(g.group(1)) * 1e9


def sgemm_ceiling(threads):
    out = subprocess.run(["build/bench_gemm", "--threads", str(threads), "--seconds", "2"], capture_output=True,
                         text=True, cwd=ROOT).stdout
    m = re.search(r"ceiling.*?([0-9.]+) GFLOP/s", out)
    return float(m.group(1)), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="64x64 only")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "peers"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(args.threads)
    model, isa = cpu_info()
    import onnxruntime
    print(f"machine: {model} ({isa}), {os.cpu_count()} cores; {args.threads} threads for everyone; medians of "
          f"{args.runs} runs after one warm-up")
    print(f"versions: torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, python "
          f"{platform.python_version()}")
    ceil, gemm_out = sgemm_ceiling(args.threads)
    print(f"sgemm ceiling ({args.threads} threads): {ceil:.1f} GFLOP/s\n{gemm_out}")
    results = []
    sizes = [64] if args.quick else [64, 128]

    lm, lpath = lua_model(args.workdir)
    for size in sizes:
        for scale in (2, 4):
            x = torch.from_numpy(weightgen.gen_input(f"peers {size}", (1, 16, size, size), 1))
            mod = LuaX(lm, scale).eval()
            onnx_path = export_onnx(mod, x, os.path.join(args.workdir, f"lua_x{scale}_{size}.onnx"))
            t_ort, y_ort = ort_time(onnx_path, x, args.threads, args.runs)
            t_pt, y_pt = torch_time(mod, x, args.runs)
            t_lu, flop = latup_time(["build/bench_lua", "--model", lpath, "--size", str(size), "--scale", str(scale),
                                     "--threads", str(args.threads), "--runs", str(args.runs)])
            results.append(dict(work=f"LUA released config x{scale}, {size}x{size} latent", flop=flop, latup=t_lu,
                                ort=t_ort, torch=t_pt, ort_vs_torch=float(np.abs(y_ort - y_pt).max())))
            print(f"  {results[-1]['work']}: latup {t_lu:.2f} s, ORT {t_ort:.2f} s, PyTorch {t_pt:.2f} s")
    del lm
    vm, vpath = vae_model(args.workdir)
    for size in sizes:
        z = torch.from_numpy(weightgen.gen_input(f"peers vae {size}", (1, 16, size, size), 2))
        mod = VaeDecode(vm).eval()
        onnx_path = export_onnx(mod, z, os.path.join(args.workdir, f"vae_{size}.onnx"))
        t_ort, _ = ort_time(onnx_path, z, args.threads, args.runs)
        t_pt, _ = torch_time(mod, z, args.runs)
        t_lu, flop = latup_time(["build/bench_vae", "--vae", vpath, "--size", str(size), "--threads",
                                 str(args.threads), "--runs", str(args.runs)])
        results.append(dict(work=f"VAE decode, FLUX widths, {size}x{size} latent", flop=flop, latup=t_lu, ort=t_ort,
                            torch=t_pt))
        print(f"  {results[-1]['work']}: latup {t_lu:.2f} s, ORT {t_ort:.2f} s, PyTorch {t_pt:.2f} s")

    # the ceiling again at the end: the best of the two is the machine's (a busy moment at either
    # end would otherwise flatter every percentage)
    ceil2, _ = sgemm_ceiling(args.threads)
    print(f"\nsgemm ceiling again at the end: {ceil2:.1f} GFLOP/s (start: {ceil:.1f}); the table uses the better")
    ceil = max(ceil, ceil2)
    print(f"\n| work | GFLOP | latup | ONNX Runtime {onnxruntime.__version__} | PyTorch {torch.__version__} | "
          f"latup / ORT | latup / PyTorch | latup GFLOP/s | % of sgemm ceiling | sgemm-ceiling time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        g = r["flop"] * 1e-9
        print(f"| {r['work']} | {g:.1f} | {r['latup']:.2f} s | {r['ort']:.2f} s | {r['torch']:.2f} s | "
              f"{r['latup'] / r['ort']:.2f} | {r['latup'] / r['torch']:.2f} | {g / r['latup']:.1f} | "
              f"{100 * g / r['latup'] / ceil:.0f}% | {g / ceil:.2f} s |")
    print(f"\nsgemm ceiling {ceil:.1f} GFLOP/s on {args.threads} threads; CPU: {model} ({isa})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=model, isa=isa, threads=args.threads, ceiling=ceil, results=results), f, indent=1)


if __name__ == "__main__":
    main()
