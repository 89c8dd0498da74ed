"""test_comfyui.py — the ComfyUI nodes in examples/comfyui driven through ComfyUI's data format,
no ComfyUI install needed: LATENT is {"samples": [B,C,H,W], ...} (other keys kept), IMAGE is
[B,H,W,3] float in [0,1]. With numpy arrays, and with torch tensors where torch is installed."""
import os
import unittest

import numpy as np

import latup
import latup_nodes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")

try:
    import torch
except ImportError:
    torch = None


class TestNodes(unittest.TestCase):
    def setUp(self):
        self.z = latup.read(os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.latent"))  # [2,16,12,10]

    def check(self, samples, as_torch):
        latent = {"samples": samples, "batch_index": [0, 1]}
        (up,) = latup_nodes.LatupLuaUpscale().upscale(latent, LUA, scale=2, threads=2)
        self.assertEqual(set(up), {"samples", "batch_index"})
        self.assertEqual(tuple(up["samples"].shape), (2, 16, 24, 20))
        (image,) = latup_nodes.LatupVaeDecode().decode(up, VAE, max_memory="", tile=0, threads=2)
        self.assertEqual(tuple(image.shape), (2, 48, 40, 3))
        if as_torch:
            self.assertIsInstance(up["samples"], torch.Tensor)
            self.assertIsInstance(image, torch.Tensor)
            image = image.numpy()
        self.assertTrue(image.min() >= 0.0 and image.max() <= 1.0)
        # the same as the package called directly: decode(upscale(z)) in diffusers' [0,1] mapping
        want = latup.to_unit(latup.Vae(VAE).decode(latup.Lua(LUA).upscale(self.z, 2)))
        self.assertTrue(np.array_equal(image, want))
        self.assertIs(latup_nodes._model("lua", LUA), latup_nodes._model("lua", LUA))  # loaded once

    def test_numpy_latent(self):
        self.check(self.z, False)

    @unittest.skipIf(torch is None, "torch is not installed (CI has numpy only); the numpy test covers the nodes")
    def test_torch_latent(self):
        self.check(torch.from_numpy(self.z.copy()), True)

    def test_registration(self):
        for name, cls in latup_nodes.NODE_CLASS_MAPPINGS.items():
            spec = cls.INPUT_TYPES()["required"]
            self.assertEqual(spec["samples"], ("LATENT",))
            self.assertTrue(callable(getattr(cls(), cls.FUNCTION)))
            self.assertIn(name, latup_nodes.NODE_DISPLAY_NAME_MAPPINGS)
        self.assertEqual(latup_nodes.LatupLuaUpscale.RETURN_TYPES, ("LATENT",))
        self.assertEqual(latup_nodes.LatupVaeDecode.RETURN_TYPES, ("IMAGE",))


if __name__ == "__main__":
    unittest.main()
