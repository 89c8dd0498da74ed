"""Training and held-out images for the small trained models (issue 12), and how crops are drawn.

Sources (licenses in docs/results.md): Debian's plasma-workspace-wallpapers (/usr/share/wallpapers)
and the images bundled in scikit-image's wheel. Nothing here is committed except the demo inputs
that tools/train/make_demo.py writes. Images are cached, resized, under build/train_cache/.
"""
import glob
import hashlib
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, "build", "train_cache")
WALLPAPERS = "/usr/share/wallpapers"
WORK_LONG_SIDE = 1280   # wallpapers are resized (Lanczos) to this long side before cropping

# Held out: never seen in training. astronaut is the demo image (NASA, public domain); EveningGlow
# is also the 2K/4K tiling picture.
TEST_WALLPAPERS = ["EveningGlow", "Path", "Volna"]
TEST_SKIMAGE = ["astronaut", "coffee", "chelsea"]
# scikit-image photos used for training (gray ones are made RGB by repeating the channel).
TRAIN_SKIMAGE = ["rocket", "motorcycle_left", "retina", "hubble_deep_field", "ihc", "camera",
                 "brick", "grass", "gravel", "moon", "coins"]


def _skimage_dir():
    import skimage
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def wallpaper_file(name):
    """The largest landscape file of a wallpaper package."""
    best = None
    for f in glob.glob(os.path.join(WALLPAPERS, name, "contents", "images", "*")):
        w, h = os.path.splitext(os.path.basename(f))[0].split("x")
        w, h = int(w), int(h)
        if w > h and (best is None or w > best[0]):
            best = (w, f)
    if best is None:
        raise FileNotFoundError(f"wallpaper {name}: no landscape image (apt-get install "
                                "plasma-workspace-wallpapers)")
    return best[1]


def skimage_file(name):
    for ext in (".png", ".jpg"):
        f = os.path.join(_skimage_dir(), name + ext)
        if os.path.isfile(f):
            return f
    raise FileNotFoundError(f"scikit-image image {name} not found in {_skimage_dir()}")


def all_wallpapers():
    return sorted(d for d in os.listdir(WALLPAPERS)
                  if os.path.isdir(os.path.join(WALLPAPERS, d, "contents", "images")))


def load_rgb(path, long_side=None):
    """uint8 [H,W,3]; resized with Lanczos (PIL) so the long side is long_side, if given and
    smaller than the image."""
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    im = Image.open(path)
    im = im.convert("RGB")
    if long_side is not None and max(im.size) > long_side:
        s = long_side / max(im.size)
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8).copy()


def cached(key, make):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, key + ".npy")
    if os.path.isfile(path):
        return np.load(path)
    a = make()
    np.save(path + ".tmp.npy", a)
    os.replace(path + ".tmp.npy", path)
    return a


def train_images():
    """list of (name, uint8 [H,W,3]) in a fixed order."""
    out = []
    for n in all_wallpapers():
        if n in TEST_WALLPAPERS:
            continue
        out.append((n, cached(f"wp_{n}_{WORK_LONG_SIDE}",
                              lambda n=n: load_rgb(wallpaper_file(n), WORK_LONG_SIDE))))
    for n in TRAIN_SKIMAGE:
        out.append((n, cached(f"sk_{n}", lambda n=n: load_rgb(skimage_file(n)))))
    return out


def test_images():
    """Held-out images: name -> uint8 [H,W,3]; wallpapers at WORK_LONG_SIDE, sizes cropped to
    multiples of 16 (a 2x SR pair whose low-res side is a multiple of 8, the VAE's factor)."""
    out = []
    for n in TEST_WALLPAPERS:
        out.append((n, cached(f"wp_{n}_{WORK_LONG_SIDE}",
                              lambda n=n: load_rgb(wallpaper_file(n), WORK_LONG_SIDE))))
    for n in TEST_SKIMAGE:
        out.append((n, cached(f"sk_{n}", lambda n=n: load_rgb(skimage_file(n)))))
    return [(n, a[: a.shape[0] // 16 * 16, : a.shape[1] // 16 * 16]) for n, a in out]


def to_tensor(a):
    """uint8 [H,W,3] -> float32 [1,3,H,W] in [-1,1] (the VAE's range)."""
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def downscale(x, s):
    """The low-resolution input of every SR path: antialiased bicubic by 1/s (torch)."""
    return F.interpolate(x, scale_factor=1.0 / s, mode="bicubic", align_corners=False,
                         antialias=True)


class Crops:
    """Random crops (size c) with random horizontal/vertical flips from a list of images; each
    image is drawn with probability proportional to its area. Seeded numpy generator."""

    def __init__(self, images, seed):
        self.images = [a for _, a in images]
        area = np.array([a.shape[0] * a.shape[1] for a in self.images], dtype=np.float64)
        self.p = area / area.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, n, c):
        out = np.empty((n, c, c, 3), dtype=np.uint8)
        for i in range(n):
            a = self.images[self.rng.choice(len(self.images), p=self.p)]
            y = self.rng.integers(0, a.shape[0] - c + 1)
            x = self.rng.integers(0, a.shape[1] - c + 1)
            t = a[y:y + c, x:x + c]
            if self.rng.random() < 0.5:
                t = t[:, ::-1]
            if self.rng.random() < 0.5:
                t = t[::-1]
            out[i] = t
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()
