"""test_comfyui.py — the ComfyUI nodes in examples/comfyui-latup, no ComfyUI install needed: loaded
as ComfyUI's loaders load a custom node folder, driven through ComfyUI's data format (LATENT is
{"samples": [B,C,H,W], ...}, other keys kept; IMAGE is [B,H,W,3] in [0,1]), with stand-ins for
ComfyUI's modules (folder_paths, comfy.utils, comfy.model_management) put in sys.modules to check
that the nodes use them when they are there: model dropdowns, the checkpoint's VAE, the progress bar
and the Cancel button. With numpy arrays, and with torch tensors where torch is installed."""
import gzip
import importlib
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
import types
import unittest

import numpy as np

import latup

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODES = os.path.join(ROOT, "examples", "comfyui-latup")
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")
TRAINED = os.path.join(ROOT, "ref_data/trained/vae.ldm.safetensors.gz")  # decoder and (patch) encoder
GT = os.path.join(ROOT, "ref_data/trained/demo_gt.png")
COMFY_LATENT = os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.latent")  # [2,16,12,10]

try:
    import torch
except ImportError:
    torch = None


def load_by_path(folder, module_name):
    """ComfyUI's nodes.py load_custom_node for a folder: spec_from_file_location(module_name,
    folder/__init__.py), registered as sys.modules[module_name], then executed. Releases before
    April 2025 use the folder's base name as module_name, later ones the folder's path (its dots
    replaced)."""
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(folder, "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_by_name(folder):
    """The folder imported as a package by its name, with its parent on sys.path."""
    parent, name = os.path.split(folder)
    sys.path.insert(0, parent)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(parent)


def forget(prefix):
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def nodes_module(package):
    return sys.modules[package.__name__ + ".latup_nodes"]


def safetensors_gz(path):
    """{name: float32 array} of a safetensors file, gzip'd or not: 8-byte length, JSON header, data."""
    return safetensors_read(path)[0]


def safetensors_read(path):
    """({name: float32 array}, the header's __metadata__) of a safetensors file, gzip'd or not."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        b, e = h["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if h["dtype"] == "BF16":  # the high half of a float32
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[h["dtype"]]).astype(np.float32)
        out[name] = a.reshape(h["shape"])
    return out, header.get("__metadata__", {})


def decoder_only(sd):
    """A state dict without the encoder's tensors (the committed VAE fixtures may hold whole VAEs)."""
    return {k: v for k, v in sd.items() if not k.startswith(("encoder.", "quant_conv."))}


def write_without_encoder(src, dst):
    """src's VAE file without its encoder, written to dst as float32 safetensors by the nodes' own
    writer: a VAE file that holds no encoder."""
    name = "comfyui-latup-writer"
    try:
        nodes = nodes_module(load_by_path(NODES, name))
        with open(dst, "wb") as f:
            nodes._write_safetensors(f, decoder_only(safetensors_gz(src)))
    finally:
        forget(name)


class ComfyStubs:
    """folder_paths, comfy.utils and comfy.model_management as ComfyUI has them, recording calls."""

    class Interrupted(Exception):
        pass

    def __init__(self, files):
        self.files = files  # folder -> {name: full path}
        self.bars, self.polls, self.interrupt_at = [], 0, None
        fp = types.ModuleType("folder_paths")
        fp.get_filename_list = lambda folder: sorted(self.files.get(folder, {}))
        fp.get_full_path = lambda folder, name: self.files.get(folder, {}).get(name)
        fp.get_folder_paths = lambda folder: ["/comfy/models/" + folder]
        stubs = self

        class ProgressBar:
            def __init__(self, total):
                self.total, self.updates = total, []
                stubs.bars.append(self)

            def update_absolute(self, value, total=None, preview=None):
                self.updates.append((value, total))

        utils = types.ModuleType("comfy.utils")
        utils.ProgressBar = ProgressBar
        mm = types.ModuleType("comfy.model_management")
        mm.InterruptProcessingException = self.Interrupted
        mm.throw_exception_if_processing_interrupted = self.poll
        comfy = types.ModuleType("comfy")
        comfy.utils, comfy.model_management = utils, mm
        self.modules = {"folder_paths": fp, "comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm}

    def poll(self):
        self.polls += 1
        if self.interrupt_at is not None and self.polls >= self.interrupt_at:
            raise self.Interrupted("Processing interrupted")

    def __enter__(self):
        self.saved = {n: sys.modules.get(n) for n in self.modules}
        sys.modules.update(self.modules)
        return self

    def __exit__(self, *exc):
        for n, m in self.saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class FakeComfyVae:
    """ComfyUI's VAE object as far as the nodes use it: .first_stage_model.state_dict(), ldm names
    (comfy/sd.py), the encoder's tensors too."""

    class Module:
        def __init__(self, sd):
            self.sd = sd

        def state_dict(self):
            return dict(self.sd)

    def __init__(self, sd):
        self.first_stage_model = self.Module(sd)


class TestLoading(unittest.TestCase):
    """Both ways ComfyUI imports a custom node folder, and the folder name that cannot collide."""

    def tearDown(self):
        for name in ("comfyui-latup", "comfy_nodes_path_x_comfyui-latup"):
            forget(name)

    def check(self, package):
        self.assertEqual(set(package.NODE_CLASS_MAPPINGS),
                         {"LatupLuaUpscale", "LatupVaeDecode", "LatupVaeDecodeVae", "LatupVaeEncode",
                          "LatupVaeEncodeVae"})
        self.assertEqual(set(package.NODE_DISPLAY_NAME_MAPPINGS), set(package.NODE_CLASS_MAPPINGS))
        self.assertIs(nodes_module(package).latup, latup)  # the package, not the node folder

    def test_by_path_old_comfyui(self):
        self.check(load_by_path(NODES, os.path.basename(NODES)))

    def test_by_path_new_comfyui(self):
        self.check(load_by_path(NODES, "comfy_nodes_path_x_comfyui-latup"))

    def test_by_name(self):
        self.check(load_by_name(NODES))

    def test_folder_named_latup(self):
        """The README's old instruction (custom_nodes/latup) on an old ComfyUI: the folder hides the
        package; the nodes say so and how to fix it rather than fail on a missing attribute."""
        real = sys.modules["latup"]
        with tempfile.TemporaryDirectory() as d:
            folder = os.path.join(d, "latup")
            shutil.copytree(NODES, folder, ignore=shutil.ignore_patterns("__pycache__"))
            try:
                with self.assertRaises(ImportError) as e:
                    load_by_path(folder, "latup")
            finally:
                forget("latup")
                sys.modules["latup"] = real
        self.assertIn("custom_nodes/comfyui-latup", str(e.exception))


class NodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.package = load_by_path(NODES, "comfyui-latup")
        cls.nodes = nodes_module(cls.package)
        cls.z = latup.read(COMFY_LATENT)

    @classmethod
    def tearDownClass(cls):
        forget("comfyui-latup")

    def want(self, z):
        return latup.to_unit(latup.Vae(VAE).decode(latup.Lua(LUA).upscale(z, 2)), range="[-1,1]")


class TestNodes(NodeTest):
    """Outside ComfyUI: paths, no progress."""

    def check(self, samples, as_torch):
        latent = {"samples": samples, "batch_index": [0, 1]}
        (up,) = self.nodes.LatupLuaUpscale().upscale(latent, LUA, scale=2, threads=2)
        self.assertEqual(set(up), {"samples", "batch_index"})
        self.assertEqual(tuple(up["samples"].shape), (2, 16, 24, 20))
        (image,) = self.nodes.LatupVaeDecode().decode(up, VAE, max_memory="", tile=0, threads=2)
        self.assertEqual(tuple(image.shape), (2, 48, 40, 3))
        if as_torch:
            self.assertIsInstance(up["samples"], torch.Tensor)
            self.assertIsInstance(image, torch.Tensor)
            image = image.numpy()
        self.assertTrue(image.min() >= 0.0 and image.max() <= 1.0)
        self.assertTrue(np.array_equal(image, self.want(self.z)))
        self.assertIs(self.nodes._model("lua", LUA), self.nodes._model("lua", LUA))  # loaded once

    def test_numpy_latent(self):
        self.check(self.z, False)

    @unittest.skipIf(torch is None, "torch is not installed (CI has numpy only); the numpy test covers the nodes")
    def test_torch_latent(self):
        self.check(torch.from_numpy(self.z.copy()), True)

    def test_registration(self):
        for name, cls in self.nodes.NODE_CLASS_MAPPINGS.items():
            spec = cls.INPUT_TYPES()["required"]
            if "Encode" in name:
                self.assertEqual((spec["pixels"], cls.RETURN_TYPES), (("IMAGE",), ("LATENT",)))
            else:
                self.assertEqual(spec["samples"], ("LATENT",))
            self.assertTrue(callable(getattr(cls(), cls.FUNCTION)))
        self.assertEqual(self.nodes.LatupLuaUpscale.RETURN_TYPES, ("LATENT",))
        self.assertEqual(self.nodes.LatupVaeDecode.RETURN_TYPES, ("IMAGE",))
        self.assertEqual(self.nodes.LatupVaeDecodeVae.INPUT_TYPES()["required"]["vae"], ("VAE",))
        self.assertEqual(self.nodes.LatupVaeEncodeVae.INPUT_TYPES()["required"]["vae"], ("VAE",))
        self.assertEqual(self.nodes.LatupLuaUpscale.INPUT_TYPES()["required"]["lua_name"][0], "STRING")
        self.assertIsNone(self.nodes._progress())  # nothing to report to outside ComfyUI


NO_ENCODER_API = "this liblatup has no VAE encoder (latup_vae_encode): runs once the C side of issue 22 is merged"


@unittest.skipUnless(latup.ENCODER, NO_ENCODER_API)
class TestEncodeNodes(NodeTest):
    """VAE Encode (latup): ComfyUI's IMAGE [B,H,W,3] in [0,1] -> LATENT, as ComfyUI's VAEEncode: the
    alpha channel dropped, the sides centre-cropped to multiples of 8, the posterior mean."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        gt = np.moveaxis(latup.read(GT), 0, -1)  # [512,512,3] in [0,1]
        cls.pixels = np.stack([gt[100:137, 200:250], gt[300:337, 40:90]])  # [2,37,50,3]
        cls.vae = latup.Vae(TRAINED, parts="encoder", threads=2)
        # ComfyUI's crop: 37 -> 32 rows from row 2, 50 -> 48 columns from column 1
        cls.want = cls.vae.encode(np.moveaxis(cls.pixels[:, 2:34, 1:49], -1, 1), range="[0,1]")

    def check(self, pixels, as_torch):
        (latent,) = self.nodes.LatupVaeEncode().encode(pixels, TRAINED, max_memory="", tile=0, threads=2)
        self.assertEqual(set(latent), {"samples"})
        z = latent["samples"]
        self.assertEqual(tuple(z.shape), (2, 16, 4, 6))
        if as_torch:
            self.assertIsInstance(z, torch.Tensor)
            z = z.numpy()
        self.assertTrue(np.array_equal(z, self.want))
        (image,) = self.nodes.LatupVaeDecode().decode(latent, TRAINED, threads=2)  # and back
        self.assertEqual(tuple(image.shape), (2, 32, 48, 3))

    def test_numpy_image(self):
        self.check(self.pixels, False)
        rgba = np.concatenate([self.pixels, np.ones_like(self.pixels[..., :1])], -1)  # alpha dropped
        (latent,) = self.nodes.LatupVaeEncode().encode(rgba, TRAINED, threads=2)
        self.assertTrue(np.array_equal(latent["samples"], self.want))

    @unittest.skipIf(torch is None, "torch is not installed (CI has numpy only); the numpy test covers the nodes")
    def test_torch_image(self):
        self.check(torch.from_numpy(self.pixels.copy()), True)

    def test_out_of_range(self):
        with self.assertRaises(ValueError) as e:
            self.nodes.LatupVaeEncode().encode(self.pixels * 2 - 1, TRAINED, threads=2)
        self.assertIn("outside", str(e.exception))

    def test_vae_socket(self):
        tmp = tempfile.mkdtemp()
        saved, tempfile.tempdir = tempfile.tempdir, tmp
        try:
            vae = FakeComfyVae(safetensors_gz(TRAINED))
            (latent,) = self.nodes.LatupVaeEncodeVae().encode(self.pixels, vae, threads=2)
            self.assertTrue(np.array_equal(latent["samples"], self.want))  # the file's encoder, bit for bit
            self.assertEqual(os.listdir(tmp), [])
            enc = self.nodes._vae_of(vae, "encoder")
            self.assertIs(enc, self.nodes._vae_of(vae, "encoder"))  # written and loaded once
            self.assertEqual((enc.has_encoder, enc.has_decoder), (True, False))  # the encoder alone
            self.assertIsNot(self.nodes._vae_of(vae), enc)
        finally:
            tempfile.tempdir = saved
            shutil.rmtree(tmp)
        with self.assertRaises(ValueError) as e:  # the decoder's tensors alone
            self.nodes.LatupVaeEncodeVae().encode(self.pixels, FakeComfyVae(decoder_only(safetensors_gz(TRAINED))))
        self.assertIn("no encoder.* tensors", str(e.exception))


def ldm_encoder(widths=(32, 64), blocks=1, zc=4, seed=0):
    """A random ldm Encoder state dict as a ComfyUI SD VAE holds it (CompVis names, quant_conv):
    conv_in, down.i.block.j (nin_shortcut where the width changes) and down.i.downsample but on
    the last level, the mid block with attention, norm_out, conv_out to 2 zc channels."""
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(name, cout, cin, k):
        sd[name + ".weight"] = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        sd[name + ".bias"] = (0.1 * rng.standard_normal(cout)).astype(np.float32)

    def norm(name, c):
        sd[name + ".weight"] = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
        sd[name + ".bias"] = (0.1 * rng.standard_normal(c)).astype(np.float32)

    def resnet(name, cin, cout):
        norm(name + ".norm1", cin)
        conv(name + ".conv1", cout, cin, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(name + ".nin_shortcut", cout, cin, 1)

    conv("encoder.conv_in", widths[0], 3, 3)
    cin = widths[0]
    for i, c in enumerate(widths):
        for j in range(blocks):
            resnet("encoder.down.%d.block.%d" % (i, j), cin, c)
            cin = c
        if i != len(widths) - 1:
            conv("encoder.down.%d.downsample.conv" % i, c, c, 3)
    resnet("encoder.mid.block_1", cin, cin)
    norm("encoder.mid.attn_1.norm", cin)
    for n in ("q", "k", "v", "proj_out"):
        conv("encoder.mid.attn_1." + n, cin, cin, 1)
    resnet("encoder.mid.block_2", cin, cin)
    norm("encoder.norm_out", cin)
    conv("encoder.conv_out", 2 * zc, cin, 3)
    conv("quant_conv", 2 * zc, 2 * zc, 1)
    return sd


@unittest.skipUnless(latup.ENCODER, NO_ENCODER_API)
class TestEncodeLdm(NodeTest):
    def test_vae_socket_ldm(self):
        """An SD-style VAE's deep encoder through the VAE socket: what the Vae says of it (the ldm
        Encoder, its levels' downsampling, quant_conv) and the LATENT's shape, and the same bits as
        that encoder loaded from a file."""
        sd = ldm_encoder()
        (latent,) = self.nodes.LatupVaeEncodeVae().encode(np.full((1, 21, 30, 3), 0.5, np.float32) +
                                                          np.linspace(-0.4, 0.4, 30, dtype=np.float32)[:, None],
                                                          FakeComfyVae(sd), threads=2)
        z = latent["samples"]
        self.assertEqual(z.shape, (1, 4, 10, 15))  # 20x30 after ComfyUI's crop, f = 2
        self.assertTrue(np.isfinite(z).all())
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sd_enc.safetensors")
            with open(path, "wb") as f:
                self.nodes._write_safetensors(f, sd)
            with latup.Vae(path, parts="encoder", threads=2) as v:
                self.assertEqual((v.encoder, v.downsampling, v.has_quant_conv, v.latent_channels, v.encoder_params),
                                 ("ldm", 2, True, 4, sum(a.size for a in sd.values())))
                img = np.full((1, 3, 20, 30), 0.5, np.float32) + np.linspace(-0.4, 0.4, 30, dtype=np.float32)
                self.assertTrue(np.array_equal(v.encode(img, range="[0,1]"), z))


class TestInsideComfy(NodeTest):
    """With ComfyUI's modules present (stand-ins): dropdowns, the VAE socket, progress, Cancel."""

    def setUp(self):
        self.stubs = ComfyStubs({"upscale_models": {"lua_small.safetensors.gz": LUA},
                                 "vae": {"flux_small.safetensors.gz": VAE}})
        self.stubs.__enter__()

    def tearDown(self):
        self.stubs.__exit__()

    def test_model_dropdowns(self):
        self.assertEqual(self.nodes.LatupLuaUpscale.INPUT_TYPES()["required"]["lua_name"], (["lua_small.safetensors.gz"],))
        self.assertEqual(self.nodes.LatupVaeDecode.INPUT_TYPES()["required"]["vae_name"], (["flux_small.safetensors.gz"],))
        (up,) = self.nodes.LatupLuaUpscale().upscale({"samples": self.z}, "lua_small.safetensors.gz", 2)
        (image,) = self.nodes.LatupVaeDecode().decode(up, "flux_small.safetensors.gz")
        self.assertTrue(np.array_equal(image, self.want(self.z)))
        with self.assertRaises(FileNotFoundError) as e:  # a name ComfyUI's folders do not hold
            self.nodes.LatupVaeDecode().decode(up, "ae.safetensors")
        self.assertIn("'vae'", str(e.exception))

    def comfy_vae(self, as_torch):
        sd = safetensors_gz(VAE)
        sd["encoder.conv_in.weight"] = np.zeros((8, 3, 3, 3), np.float32)  # not the decoder's: left out
        if as_torch:
            sd = {k: torch.from_numpy(v.copy()).to(torch.bfloat16 if k.startswith("encoder") else torch.float32)
                  for k, v in sd.items()}
        return FakeComfyVae(sd)

    def check_vae_socket(self, as_torch):
        tmp = tempfile.mkdtemp()
        saved, tempfile.tempdir = tempfile.tempdir, tmp
        try:
            vae = self.comfy_vae(as_torch)
            up = {"samples": latup.Lua(LUA).upscale(self.z, 2)}
            (image,) = self.nodes.LatupVaeDecodeVae().decode(up, vae)
            self.assertTrue(np.array_equal(image, self.want(self.z)))  # the file's decoder, bit for bit
            self.assertEqual(os.listdir(tmp), [])  # the temporary file is gone
            self.assertIs(self.nodes._vae_of(vae), self.nodes._vae_of(vae))  # written and loaded once
        finally:
            tempfile.tempdir = saved
            shutil.rmtree(tmp)

    def test_vae_socket_numpy(self):
        self.check_vae_socket(False)

    @unittest.skipIf(torch is None, "torch is not installed: the numpy state dict covers the VAE socket")
    def test_vae_socket_torch(self):
        self.check_vae_socket(True)

    def test_vae_socket_refuses(self):
        with self.assertRaises(ValueError) as e:
            self.nodes._vae_of(FakeComfyVae({"encoder.conv_in.weight": np.zeros((8, 3, 3, 3), np.float32)}))
        self.assertIn("no decoder.* tensors", str(e.exception))
        sd = safetensors_gz(VAE)
        del sd["decoder.conv_in.weight"]
        with self.assertRaises(ValueError) as e:
            self.nodes._vae_of(FakeComfyVae(sd))
        self.assertIn("decoder.conv_in.weight", str(e.exception))
        with self.assertRaises(TypeError):
            self.nodes._vae_of(object())

    def test_progress_callback(self):
        """The callback the nodes hand latup: ComfyUI's bar, then its Cancel poll, each step."""
        p = self.nodes._Progress()
        p(1, 4)
        p(4, 4)
        self.assertEqual([(b.total, b.updates) for b in self.stubs.bars], [(4, [(1, 4), (4, 4)])])
        self.assertEqual(self.stubs.polls, 2)
        self.stubs.interrupt_at = 3
        with self.assertRaises(ComfyStubs.Interrupted):
            p(2, 4)
        self.assertEqual(self.nodes._progress() is not None, latup.PROGRESS)

    @unittest.skipUnless(latup.PROGRESS, "this liblatup has no progress callback (latup_status_name(7) is "
                         "unknown): runs once the C side of issue 21 is merged")
    def test_progress_and_cancel(self):
        (up,) = self.nodes.LatupLuaUpscale().upscale({"samples": self.z}, "lua_small.safetensors.gz", 2)
        (bar,) = self.stubs.bars
        self.assertEqual(bar.updates[-1], (bar.total, bar.total))
        self.assertEqual(self.stubs.polls, len(bar.updates))
        self.stubs.interrupt_at = self.stubs.polls + 2  # Cancel pressed during the decode
        with self.assertRaises(ComfyStubs.Interrupted):
            self.nodes.LatupVaeDecode().decode(up, "flux_small.safetensors.gz")


if __name__ == "__main__":
    unittest.main()
