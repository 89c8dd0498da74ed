"""docs/img/demo_compare.png: build/demo/compare.png (from `make demo`) cut down for the docs:
each panel's label strip and a 320x320 window around the astronaut's face, at 1x (no resampling,
so the differences between the paths stay visible).

    tools/.venv/bin/python tools/train/doc_images.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

PANEL, GAP, LABEL = 512, 6, 48          # examples/demo/demo.c: 512x512 panels, 6-pixel gaps, label strip
WIN_Y, WIN_X, WIN = 24, 96, 320         # the face


def main():
    from PIL import Image
    src = np.asarray(Image.open(os.path.join(data.ROOT, "build", "demo", "compare.png")))
    n = (src.shape[1] + GAP) // (PANEL + GAP)
    assert src.shape[0] >= LABEL + PANEL and n == 4, src.shape   # the top row (the zoom row below)
    cols = []
    for k in range(n):
        x0 = k * (PANEL + GAP)
        lab = src[:LABEL, x0:x0 + WIN + 64]
        lab = np.concatenate([lab[:, :WIN], np.full((LABEL, 0, 3), 255, np.uint8)], axis=1)
        img = src[LABEL + WIN_Y:LABEL + WIN_Y + WIN, x0 + WIN_X:x0 + WIN_X + WIN]
        cols.append(np.concatenate([lab, img], axis=0))
        if k + 1 < n:
            cols.append(np.full((LABEL + WIN, GAP, 3), 255, np.uint8))
    out = os.path.join(data.ROOT, "docs", "img", "demo_compare.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    Image.fromarray(np.concatenate(cols, axis=1)).save(out, optimize=True)
    print(f"{os.path.relpath(out, data.ROOT)}: {os.path.getsize(out):,} bytes")


if __name__ == "__main__":
    main()
