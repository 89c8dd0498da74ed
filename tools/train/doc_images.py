"""docs/img/demo_compare.png: build/demo/compare.png (from `make demo`) as it is, both rows (the
four labelled 512x512 panels, and below them the 4x zoom of the window where the paths differ
most), re-encoded smaller (PNG optimize; the pixels are unchanged).

    tools/.venv/bin/python tools/train/doc_images.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

PANEL, GAP, LABEL = 512, 6, 48          # examples/demo/demo.c: 512x512 panels, 6-pixel gaps, label strip


def main():
    from PIL import Image
    src = np.asarray(Image.open(os.path.join(data.ROOT, "build", "demo", "compare.png")).convert("RGB"))
    n = (src.shape[1] + GAP) // (PANEL + GAP)
    assert n == 4 and src.shape[0] > LABEL + 2 * PANEL, src.shape   # two rows of four panels
    out = os.path.join(data.ROOT, "docs", "img", "demo_compare.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    Image.fromarray(src).save(out, optimize=True)
    back = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(back, src)
    print(f"{os.path.relpath(out, data.ROOT)}: {os.path.getsize(out):,} bytes, {src.shape[1]}x{src.shape[0]}")


if __name__ == "__main__":
    main()
