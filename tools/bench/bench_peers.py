"""latup next to ONNX Runtime and PyTorch on the same random-weight models, in one run, on the machine
at hand (run it through tools/bench/bench_peers.sh, which makes the environment and builds latup).

For each work item (LUA released config x2/x4 at 64x64 and 128x128; the VAE decoder at the FLUX
widths at 64x64 and 128x128) it times, with the same thread count and the same weights:
  - latup: build/bench_lua / build/bench_vae --serve loading the very checkpoint the peers use, one
    warm process per OpenBLAS kernel set (--kernels; by default the environment's kernels and, where
    latup warns that they are narrower than the CPU's, the widest set the CPU runs);
  - ONNX Runtime (CPU execution provider, all graph optimisations) on the model exported from the
    PyTorch reference;
  - PyTorch itself (eager, inference mode);
interleaved: each round runs latup under every kernel set, then ONNX Runtime, then PyTorch, one run
each, all warmed up beforehand, so a drift of the machine falls on every tool alike. It prints every
run, the medians, the ratios, the FLOP count, and per kernel set the sgemm ceiling measured in the
same sitting (build/bench_gemm: a 2048^3 product cut in tiles, one single-threaded sgemm per tile),
with the CPU model and ISA. A benchmark, not a test: nothing is asserted.
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
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
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
        st_io.save(path, tensors, {"note": "random weights for tools/bench/bench_peers.py"})
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
        st_io.save(path, [(k, v, "F32") for k, v in w.items()], {"note": "random weights for tools/bench/bench_peers.py"})
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


# ---- latup: one warm server process per kernel set ------------------------------------------------

PROBE = os.path.join(ROOT, "build", "tests", "blas_kernels")


def kernel_env(kset):
    """The environment a latup process runs under: OPENBLAS_CORETYPE=kset, or as it is ("default")."""
    env = dict(os.environ)
    if kset != "default":
        env["OPENBLAS_CORETYPE"] = kset
    return env


def core_name(kset):
    """The kernel set OpenBLAS reports in a process started with kernel_env(kset)."""
    return subprocess.run([PROBE, "--core"], capture_output=True, text=True, env=kernel_env(kset),
                          check=True).stdout.strip()


class LatupServer:
    """build/bench_lua or bench_vae --serve: loads once, warms up, then one timed run per request."""

    def __init__(self, cmd, kset):
        self.p = subprocess.Popen(cmd + ["--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  cwd=ROOT, env=kernel_env(kset))
        line = "header"
        while line:  # the benchmark's kernel lines first, then "serve: ready"
            line = self.p.stdout.readline()
            m = re.search(r"serve: ready, ([0-9.]+) GFLOP", line)
            if m:
                break
        if not m:
            raise RuntimeError(f"{' '.join(cmd)} --serve: exited without getting ready")
        self.flop = float(m.group(1)) * 1e9

    def run(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        m = re.match(r"run ([0-9.]+) s", line)
        if not m:
            raise RuntimeError(f"latup server: {line.strip() or 'exited'}")
        return float(m.group(1))

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def default_kernel_sets():
    """The default kernels and, where latup says they are narrower than the CPU's (`latup --version
    --verbose` warns), the widest set this CPU runs (the last of `blas_kernels --sets`)."""
    sets = subprocess.run([PROBE, "--sets"], capture_output=True, text=True, check=True).stdout.split()
    v = subprocess.run(["build/latup", "--version", "--verbose"], capture_output=True, text=True, cwd=ROOT)
    narrower = "warning:" in v.stdout + v.stderr
    return ["default", sets[-1]] if narrower and sets else ["default"]


def sgemm_ceiling(threads, kset):
    out = subprocess.run(["build/bench_gemm", "--threads", str(threads), "--seconds", "2"], capture_output=True,
                         text=True, cwd=ROOT, env=kernel_env(kset)).stdout
    m = re.search(r"ceiling.*?([0-9.]+) GFLOP/s", out)
    return float(m.group(1)), out


# ---- one sitting, interleaved ------------------------------------------------------------------------

PAUSE = 0.2  # seconds between two timed runs: the last tool's spinning threads go to sleep


def interleaved(work, ksets, latup_cmd, ort_run, torch_run, runs):
    """runs rounds of: latup under each kernel set, ONNX Runtime, PyTorch, one run each (all warm)."""
    servers = {k: LatupServer(latup_cmd, k) for k in ksets}
    peers = [("ort", ort_run)] + ([("torch", torch_run)] if torch_run else [])  # --no-torch: ORT only
    for _, fn in peers:
        fn()  # warm-ups (latup's servers warmed up themselves)
    t = {k: [] for k in ksets}
    for name, _ in peers:
        t[name] = []
    try:
        for _ in range(runs):
            for k in ksets:
                time.sleep(PAUSE)
                t[k].append(servers[k].run())
            for name, fn in peers:
                time.sleep(PAUSE)
                t0 = time.perf_counter()
                fn()
                t[name].append(time.perf_counter() - t0)
    finally:
        flop = next(iter(servers.values())).flop
        for s in servers.values():
            s.close()
    med = {k: statistics.median(v) for k, v in t.items()}
    print(f"  {work}: " + ", ".join(f"latup[{k}] {med[k]:.2f} s" for k in ksets) +
          f", ORT {med['ort']:.2f} s" + (f", PyTorch {med['torch']:.2f} s" if "torch" in med else ""))
    for k, v in t.items():
        print(f"    runs {k}: " + " ".join(f"{x:.2f}" for x in v))
    return dict(work=work, flop=flop, samples=t, median=med)


# ---- issue 23's targets, and where the time goes ---------------------------------------------------

# The VAE decode's targets (issue 23): at most this fraction of ONNX Runtime's time, under the widest
# kernel set the CPU runs, and under Haswell's.
VAE_TARGETS = {"widest": 0.6, "Haswell": 0.9}


def stage_profile(vpath, size, kset, threads, workdir):
    """latup decode --verbose's per-stage timings, one run of the CLI on a size x size latent."""
    z = os.path.join(workdir, f"profile_z{size}.npy")
    if not os.path.exists(z):
        subprocess.run(["build/bench_vae", "--write-latent", z, "--size", str(size)], cwd=ROOT, check=True,
                       capture_output=True)
    out = os.path.join(workdir, "profile_out.npy")
    r = subprocess.run(["build/latup", "decode", "--vae", vpath, "-i", z, "-o", out, "--threads", str(threads),
                        "--verbose"], capture_output=True, text=True, cwd=ROOT, env=kernel_env(kset))
    if os.path.exists(out):
        os.remove(out)
    line = next((l for l in r.stderr.splitlines() if l.startswith("VAE timings")), None)
    if r.returncode != 0 or not line:
        return f"not measured (latup decode exited {r.returncode}: {r.stderr.strip().splitlines()[-1:]})"
    stages = re.findall(r"([\w.+]+) ([0-9.]+) s", line.split(":", 1)[1])
    total = sum(float(t) for _, t in stages)
    return ", ".join(f"{n} {float(t):.2f} s ({100 * float(t) / total:.0f}%)" for n, t in stages) + \
        f"; stages {total:.2f} s"


# OpenBLAS kernel sets with 512-bit kernels: SkylakeX and Cooperlake (which adds bf16 only) are the
# same width for sgemm, so either counts as "the widest kernels" of an AVX-512 CPU.
AVX512_CORES = {"SkylakeX", "Cooperlake", "SapphireRapids"}


def same_width(a, b):
    return a == b or (a in AVX512_CORES and b in AVX512_CORES)


def target_lines(results, ksets, cores, widest, ceil):
    """The VAE rows against VAE_TARGETS, as a markdown table and a line per miss saying by how much and
    what the time is made of. A kernel set counts as 'widest' when its kernels are as wide as the widest set's."""
    rows = ["| work | kernels | latup | ONNX Runtime | latup / ORT | target | verdict |", "|---|---|---|---|---|---|---|"]
    why = []
    for r in results:
        if not r["work"].startswith("VAE"):
            continue
        for k in ksets:
            which = "widest" if same_width(cores[k], widest) else "Haswell" if cores[k] == "Haswell" else None
            if which is None:
                continue
            t, o = r["median"][k], r["median"]["ort"]
            goal = VAE_TARGETS[which]
            if t <= goal * o:
                verdict = "met"
            else:
                verdict = f"**missed** by {100 * (t / (goal * o) - 1):.0f}%: {goal}x would be {goal * o:.2f} s"
                g = r["flop"] * 1e-9
                why.append(f"- {r['work']}, {cores[k]}: {g / t:.0f} direct-equivalent GFLOP/s, "
                           f"{100 * g / t / ceil[k]:.0f}% of the sgemm ceiling ({ceil[k]:.0f} GFLOP/s): the "
                           f"products already run above the ceiling's pace through Winograd F(4x4,3x3); what is "
                           f"left is OpenBLAS's packing of the operands and the transforms (the stages below; "
                           f"the 1-thread perf profile in docs/performance.md)")
            rows.append(f"| {r['work']} | {cores[k]}{' (widest)' if which == 'widest' else ''} | {t:.2f} s | {o:.2f} s | {t / o:.2f} | "
                        f"<= {goal}x | {verdict} |")
    return rows, why


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5, help="rounds (the medians are of this many runs each)")
    ap.add_argument("--quick", action="store_true", help="64x64 only")
    ap.add_argument("--works", default="lua,vae", help="comma-separated: lua, vae (default both)")
    ap.add_argument("--no-torch", action="store_true", help="time latup and ONNX Runtime only (PyTorch is the "
                    "slowest; a sitting without it is shorter)")
    ap.add_argument("--kernels", default="",
                    help="comma-separated OpenBLAS kernel sets for latup ('default': as the environment gives); "
                         "default: the default kernels and, where narrower, the widest this CPU runs")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "peers"))
    ap.add_argument("--json", help="also write the results (every run) here")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(args.threads)
    model, isa = cpu_info()
    ksets = [k.strip() for k in args.kernels.split(",") if k.strip()] or default_kernel_sets()
    cores = {k: core_name(k) for k in ksets}
    import onnxruntime
    print(f"machine: {model} ({isa}), {os.cpu_count()} cores; {args.threads} threads for everyone; medians of "
          f"{args.runs} interleaved runs (latup under each kernel set, ONNX Runtime"
          f"{'' if args.no_torch else ', PyTorch'}; each warm in its own process)")
    print(f"versions: torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, python "
          f"{platform.python_version()}")
    print("OpenBLAS kernels for latup: " + ", ".join(f"{k} -> {cores[k]}" for k in ksets) +
          f" (OPENBLAS_CORETYPE in the environment: {os.environ.get('OPENBLAS_CORETYPE', 'unset')})")
    for k in ksets:  # what latup itself says of each (the kernel set, its ISA, the CPU's, any warning)
        v = subprocess.run(["build/latup", "--version", "--verbose"], capture_output=True, text=True, cwd=ROOT,
                           env=kernel_env(k))
        print(f"latup --version --verbose under {k}:\n  " + "\n  ".join(v.stdout.strip().splitlines()[1:]))
    ceil = {}
    for k in ksets:
        ceil[k], gemm_out = sgemm_ceiling(args.threads, k)
        print(f"sgemm ceiling, {cores[k]} kernels ({args.threads} threads): {ceil[k]:.1f} GFLOP/s\n{gemm_out}")
    results = []
    sizes = [64] if args.quick else [64, 128]

    works = {w.strip() for w in args.works.split(",") if w.strip()}
    lm, lpath = lua_model(args.workdir) if "lua" in works else (None, None)
    for size in sizes if "lua" in works else []:
        for scale in (2, 4):
            x = torch.from_numpy(weightgen.gen_input(f"peers {size}", (1, 16, size, size), 1))
            mod = LuaX(lm, scale).eval()
            sess = ort_session(export_onnx(mod, x, os.path.join(args.workdir, f"lua_x{scale}_{size}.onnx")),
                               args.threads)
            feed = {"x": x.numpy()}
            with torch.inference_mode():
                y_pt = mod(x).numpy()
                diff = float(np.abs(sess.run(None, feed)[0] - y_pt).max())
                r = interleaved(f"LUA released config x{scale}, {size}x{size} latent", ksets,
                                ["build/bench_lua", "--model", lpath, "--size", str(size), "--scale", str(scale),
                                 "--threads", str(args.threads)],
                                lambda: sess.run(None, feed), None if args.no_torch else lambda: mod(x), args.runs)
            r["ort_vs_torch"] = diff
            results.append(r)
            del sess
    del lm
    vm, vpath = vae_model(args.workdir) if "vae" in works else (None, None)
    for size in sizes if "vae" in works else []:
        z = torch.from_numpy(weightgen.gen_input(f"peers vae {size}", (1, 16, size, size), 2))
        mod = VaeDecode(vm).eval()
        sess = ort_session(export_onnx(mod, z, os.path.join(args.workdir, f"vae_{size}.onnx")), args.threads)
        feed = {"x": z.numpy()}
        with torch.inference_mode():
            results.append(interleaved(f"VAE decode, FLUX widths, {size}x{size} latent", ksets,
                                       ["build/bench_vae", "--vae", vpath, "--size", str(size), "--threads",
                                        str(args.threads)],
                                       lambda: sess.run(None, feed), None if args.no_torch else lambda: mod(z),
                                       args.runs))
        del sess

    # the ceilings again at the end: the better of the two is the machine's (a busy moment at
    # either end would otherwise flatter every percentage)
    for k in ksets:
        c2, _ = sgemm_ceiling(args.threads, k)
        print(f"sgemm ceiling, {cores[k]} kernels, again at the end: {c2:.1f} GFLOP/s (start: {ceil[k]:.1f}); "
              f"the table uses the better")
        ceil[k] = max(ceil[k], c2)
    for k in ksets:
        print(f"\n### latup under OpenBLAS's {cores[k]} kernels (sgemm ceiling {ceil[k]:.1f} GFLOP/s on "
              f"{args.threads} threads)\n")
        print(f"| work | GFLOP | latup | ONNX Runtime {onnxruntime.__version__} | PyTorch {torch.__version__} | "
              f"latup / ORT | latup / PyTorch | latup GFLOP/s | % of sgemm ceiling | sgemm-ceiling time |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            g, m = r["flop"] * 1e-9, r["median"]
            pt = f"{m['torch']:.2f} s" if "torch" in m else "not run"
            ptr = f"{m[k] / m['torch']:.2f}" if "torch" in m else "-"
            print(f"| {r['work']} | {g:.1f} | {m[k]:.2f} s | {m['ort']:.2f} s | {pt} | "
                  f"{m[k] / m['ort']:.2f} | {ptr} | {g / m[k]:.1f} | "
                  f"{100 * g / m[k] / ceil[k]:.0f}% | {g / ceil[k]:.2f} s |")
    if any(r["work"].startswith("VAE") for r in results):
        sets = subprocess.run([PROBE, "--sets"], capture_output=True, text=True, check=True).stdout.split()
        widest = core_name(sets[-1]) if sets else cores[ksets[0]]
        rows, why = target_lines(results, ksets, cores, widest, ceil)
        print(f"\n### The VAE against issue 23's targets (at most {VAE_TARGETS['widest']}x ONNX Runtime's time "
              f"under the widest kernels, {widest} or as wide; at most {VAE_TARGETS['Haswell']}x under Haswell's)\n")
        print("\n".join(rows) if len(rows) > 2 else "(no kernel set of this sitting is the widest or Haswell: "
              "run with --kernels default,Haswell)")
        if why:
            print("\nWhere a target is missed:\n" + "\n".join(why))
        print("\nPer-stage profile of the VAE decode (`latup decode --verbose`, one run after the timed rounds, "
              f"{args.threads} threads):")
        for size in sizes:
            for k in ksets:
                print(f"- {size}x{size}, {cores[k]}: {stage_profile(vpath, size, k, args.threads, args.workdir)}")
    print(f"\nCPU: {model} ({isa}); {args.threads} threads; medians of {args.runs} interleaved runs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=model, isa=isa, threads=args.threads, kernels=cores, ceiling=ceil, results=results),
                      f, indent=1)


if __name__ == "__main__":
    main()
