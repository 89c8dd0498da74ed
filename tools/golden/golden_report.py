"""The summary the golden generators print at the end (make_golden.py, make_vae_golden.py,
reference/swinir_ref.py): the worst fp32-vs-fp64 difference per tensor kind and the files written."""
import os

import torch


def print_worst(summary, width, what):
    """summary: kind -> (max abs, max rel, min max|x|, max max|x|)."""
    print(f"\nworst fp32-vs-fp64 per tensor kind ({what}):")
    print(f"  {'kind':{width}s} {'max abs':>10s} {'max rel':>9s} {'max|x| range':>20s}")
    for k, (d, r, lo, hi) in summary.items():
        print(f"  {k:{width}s} {d:10.3e} {r:9.2e}   [{lo:8.3f}, {hi:8.3f}]")


def print_files(files, root, width, title="files:"):
    """files: (path, bytes) pairs, listed relative to root, then their total."""
    total = sum(s for _, s in files)
    print("\n" + title)
    for p, s in files:
        print(f"  {os.path.relpath(p, root):{width}s} {s:12,d}")
    print(f"  {'total':{width}s} {total:12,d}")


def fp64_error(a, b):
    """One tensor computed in fp32 (a) and in fp64 (b): (max |a - b|, max |b|)."""
    assert a.dtype == torch.float32 and b.dtype == torch.float64
    return float((a.double() - b).abs().max()), float(b.abs().max())


def print_header(kw, sw):
    print(f"  {'tensor':{kw}s} {'shape':{sw}s} {'max|x|':>9s} {'|fp32-fp64|':>11s} {'rel':>9s}")


def print_row(k, shape, r, d, kw, sw):
    """One stored tensor: name, shape, max |fp64|, max |fp32 - fp64| and their ratio."""
    print(f"  {k:{kw}s} {str(list(shape)):{sw}s} {r:9.4f} {d:11.3e} {d / max(r, 1e-30):9.2e}")


def add_worst(summary, kind, d, r):
    """Folds one tensor's (max abs error, max |x|) into summary[kind] (see print_worst)."""
    w = summary.setdefault(kind, [0.0, 0.0, float("inf"), 0.0])
    w[0], w[1] = max(w[0], d), max(w[1], d / max(r, 1e-30))
    w[2], w[3] = min(w[2], r), max(w[3], r)
