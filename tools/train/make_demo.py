"""The demo's inputs in ref_data/trained/: the ground truth (scikit-image's `astronaut`, NASA,
public domain; held out from training) and the VAE latent of its half-size version, made by the
trained encoder (posterior mean), decoder-ready [16,h,w] float32.

    tools/.venv/bin/python tools/train/make_demo.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import models  # noqa: E402

DEMO_IMAGE = "astronaut"


def main():
    torch.set_num_threads(2)
    from PIL import Image
    gt = dict(data.test_images())[DEMO_IMAGE]
    vae = models.load_encoder()
    with torch.no_grad():
        lr = data.downscale(data.to_tensor(gt), 2).clamp(-1, 1)
        z = vae.encode(lr).latent_dist.mean[0].contiguous().numpy().astype(np.float32)
    os.makedirs(models.TRAINED, exist_ok=True)
    np.save(os.path.join(models.TRAINED, "demo_latent.npy"), z)
    Image.fromarray(gt).save(os.path.join(models.TRAINED, "demo_gt.png"), optimize=True)
    print(f"demo: ground truth {DEMO_IMAGE} {gt.shape[1]}x{gt.shape[0]}, latent {list(z.shape)} "
          f"(std {z.std():.3f})")


if __name__ == "__main__":
    main()
