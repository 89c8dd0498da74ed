#!/usr/bin/env python3
"""Writes the reference PNGs in tests/data/png/ that tests/test_png.c reads, each with the pixel
values it must decode to as <name>.npy (float32 [3,H,W], value / 255, or value / 65535 for the
16-bit files; alpha dropped, gray replicated, palette looked up). The PNGs come from tools other
than latup: Pillow's encoder (adaptive per-row filtering) and a few lines of zlib + struct here
that force every filter type, Paeth and Average included (8-bit RGB, and 16-bit gray, gray+alpha,
RGB and RGBA, whose filters work on 2-byte samples). Deterministic: seeded pixels, no timestamps.

    /usr/bin/python3 tools/golden/make_png_fixtures.py      # needs numpy and Pillow (Debian python3-pil)
"""
import os
import struct
import zlib
from collections import Counter

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "png")


def expected(rgb):
    """[H,W,3] uint8 -> [3,H,W] float32 v/255, rounded once from float32 as C's (float)v / 255.0f;
    uint16 -> v/65535 the same way."""
    top = np.float32(65535.0 if rgb.dtype == np.uint16 else 255.0)
    return (rgb.astype(np.float32) / top).transpose(2, 0, 1).copy()


def pixels(rng, h, w, c):
    """Smooth gradients plus noise, so that predictive filters pay off and encoders pick them."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 29 + y * 7 + 13 * k) % 256 for k in range(c)], axis=-1)
    return ((base + rng.integers(0, 24, size=(h, w, c))) % 256).astype(np.uint8)


def filter_types(png_bytes):
    """The filter byte of each row (8-bit, non-interlaced), via zlib: for the printed summary."""
    pos, idat, ihdr = 8, b"", None
    while pos < len(png_bytes):
        n, t = struct.unpack(">I4s", png_bytes[pos:pos + 8])
        if t == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", png_bytes[pos + 8:pos + 21])
        if t == b"IDAT":
            idat += png_bytes[pos + 8:pos + 8 + n]
        pos += 12 + n
    w, h, depth, color, _, _, _ = ihdr
    assert depth in (8, 16), depth
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color] * depth // 8
    raw = zlib.decompress(idat)
    stride = 1 + w * bpp
    return [raw[r * stride] for r in range(h)]


def chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def encode_forced_filters(rgb, color=2):
    """PNG whose row r uses filter type r % 5 (None, Sub, Up, Average, Paeth): [H,W,samples] uint8
    (8-bit) or uint16 (16-bit, written big-endian); color: the IHDR color type of those samples."""
    h, w, spp = rgb.shape
    depth = 16 if rgb.dtype == np.uint16 else 8
    rows = rgb.astype(">u2").view(np.uint8) if depth == 16 else rgb  # big-endian byte pairs
    bpp, raw, prev = spp * depth // 8, b"", [0] * (w * spp * depth // 8)
    for r in range(h):
        line, f = [int(v) for v in rows[r].reshape(-1)], r % 5
        out = []
        for i, x in enumerate(line):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
            out.append((x - pred) & 0xFF)
        raw += bytes([f]) + bytes(out)
        prev = line
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    comp = zlib.compress(raw, 9)
    # two IDAT chunks, split mid-stream, and an ancillary chunk the reader must skip
    half = len(comp) // 2
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"Comment\x00latup fixture") +
            chunk(b"IDAT", comp[:half]) + chunk(b"IDAT", comp[half:]) + chunk(b"IEND", b""))


def save(name, png_bytes, want, top_bytes=None):
    with open(os.path.join(OUT, name + ".png"), "wb") as f:
        f.write(png_bytes)
    np.save(os.path.join(OUT, name + ".npy"), want)
    # self-check with Pillow's decoder, independent of how the file was made; for 16-bit color
    # Pillow gives 8 bits, the high byte of each sample (top_bytes)
    back = np.asarray(Image.open(os.path.join(OUT, name + ".png")).convert("RGB"))
    if top_bytes is None:
        assert np.array_equal(expected(back), want), name
    else:
        assert np.array_equal(back, top_bytes), name
    counts = Counter(filter_types(png_bytes))
    print(f"{name}.png: {len(png_bytes)} bytes, filters per row {dict(sorted(counts.items()))}")


def pil_bytes(img):
    path = os.path.join(OUT, ".tmp.png")
    img.save(path, format="PNG")  # Pillow picks a filter per row (adaptive)
    with open(path, "rb") as f:
        b = f.read()
    os.remove(path)
    return b


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)

    rgb = pixels(rng, 7, 9, 3)
    save("rgb_pil", pil_bytes(Image.fromarray(rgb, "RGB")), expected(rgb))

    rgba = pixels(rng, 6, 8, 4)
    save("rgba_pil", pil_bytes(Image.fromarray(rgba, "RGBA")), expected(rgba[:, :, :3]))

    gray = pixels(rng, 5, 7, 1)[:, :, 0]
    save("gray_pil", pil_bytes(Image.fromarray(gray, "L")), expected(np.repeat(gray[:, :, None], 3, axis=2)))

    # more than 16 colors, else Pillow writes a 4-bit palette image (which latup refuses)
    pal = rng.integers(0, 256, size=(40, 3)).astype(np.uint8)
    idx = rng.integers(0, 40, size=(5, 8)).astype(np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(pal.reshape(-1).tolist())
    save("palette_pil", pil_bytes(im), expected(pal[idx]))

    rgb = pixels(rng, 10, 6, 3)
    save("filters_zlib", encode_forced_filters(rgb), expected(rgb))

    # 16-bit, as --png-bits 16 writes (RGB) and as other tools do (gray, gray+alpha, RGBA): full
    # 16-bit values, so a reader that keeps only one byte of a sample fails
    def pixels16(h, w, c):
        return (pixels(rng, h, w, c).astype(np.uint16) * 257 + rng.integers(0, 257, size=(h, w, c))).astype(np.uint16)

    rgb16 = pixels16(7, 6, 3)
    save("rgb16_zlib", encode_forced_filters(rgb16, 2), expected(rgb16), rgb16 >> 8)
    rgba16 = pixels16(6, 5, 4)
    save("rgba16_zlib", encode_forced_filters(rgba16, 6), expected(rgba16[:, :, :3]), rgba16[:, :, :3] >> 8)
    ga16 = pixels16(5, 7, 2)
    save("gray_alpha16_zlib", encode_forced_filters(ga16, 4), expected(np.repeat(ga16[:, :, :1], 3, axis=2)),
         np.repeat(ga16[:, :, :1] >> 8, 3, axis=2))
    gray16 = pixels16(6, 9, 1)[:, :, 0]
    im = Image.fromarray(gray16, "I;16")  # Pillow's own 16-bit gray encoder
    want = expected(np.repeat(gray16[:, :, None], 3, axis=2))
    png = pil_bytes(im)
    assert struct.unpack(">IIBB", png[16:26])[2:] == (16, 0), "Pillow wrote no 16-bit gray"
    with open(os.path.join(OUT, "gray16_pil.png"), "wb") as f:
        f.write(png)
    np.save(os.path.join(OUT, "gray16_pil.npy"), want)
    assert np.array_equal(np.asarray(Image.open(os.path.join(OUT, "gray16_pil.png"))).astype(np.uint16), gray16)
    print(f"gray16_pil.png: {len(png)} bytes, filters per row {dict(sorted(Counter(filter_types(png)).items()))}")


if __name__ == "__main__":
    main()
