"""The denoiser: PSNR as a local evaluate module, the noise model, the course's Table 3 MLP, the models' I/O contract,
the bundled models."""

import json

import numpy as np
import pytest
import torch
from conftest import synthetic_faces
from PIL import Image
from torch import nn

import dlhub
from dlhub.denoise import CourseMLP, Denoiser, add_noise
from dlhub.errors import DataError
from dlhub.metrics import psnr


def test_psnr_module_is_the_formula():
    rng = np.random.default_rng(0)
    ref = rng.random((5, 16, 16))
    pred = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1)
    expected = [10 * np.log10(1.0 / np.mean((p.astype(np.float32).astype(np.float64) - r.astype(np.float32)) ** 2))
                for p, r in zip(pred, ref)]
    out = psnr(pred, ref)
    assert np.allclose(out["psnr_per_image"], expected, atol=1e-4)
    assert out["psnr"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert psnr(pred * 255, ref * 255, data_range=255.0)["psnr"] == pytest.approx(out["psnr"], abs=1e-3)
    assert psnr([ref[0]], [ref[0]])["psnr"] == float("inf")
    with pytest.raises(ValueError, match="prediction has 4 values, its reference 256"):
        psnr([np.zeros(4)], [ref[0]])


def test_add_noise():
    clean = torch.full((3, 1, 8, 8), 0.5)
    assert torch.equal(add_noise(clean, 0.0), clean)
    noisy = add_noise(clean, torch.tensor([0.0, 0.1, 1.0]), torch.Generator().manual_seed(0))
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert torch.equal(noisy[0], clean[0]) and noisy[2].std() > noisy[1].std() > 0


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_denoise_keeps_size_and_returns_grayscale(arch):
    model = Denoiser(arch=arch, widths=(8, 16)).eval()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (53, 37, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 255, (20, 90, 4), dtype=np.uint8), "RGBA"),
              Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).convert("P"),
              Image.fromarray(rng.integers(0, 65535, (30, 30), dtype=np.uint16))]
    out = model.denoise(images)
    assert [o.size for o in out] == [im.size for im in images]
    assert all(o.mode == "L" for o in out)


def test_flip_average_is_the_mean_of_the_image_and_its_mirror_in_eval_mode_only(tmp_path):
    torch.manual_seed(0)
    model = Denoiser(widths=(8, 16))
    assert model.flip_average and not Denoiser(arch="mlp").flip_average  # the course's MLP stays as the course has it
    x = torch.rand(3, 1, 16, 24)
    with torch.no_grad():
        net = model.net.eval()
        expected = (net(x) + net(x.flip(-1)).flip(-1)) / 2
        assert torch.allclose(model.eval()(x), expected, atol=1e-6)
        assert not torch.allclose(model(x), net(x), atol=1e-4)  # the mirror's answer differs: the mean is not a no-op
        model.flip_average = False
        assert torch.equal(model(x), net(x))
    model.flip_average = True
    model.train()
    assert model(x).shape == x.shape and torch.equal(model(x), model.net(x))  # training sees one image, not two
    # past SMALL_IMAGE pixels the two passes run one after the other (half the memory): the same answer
    big = torch.rand(1, 1, 136, 128)
    with torch.no_grad():
        assert torch.allclose(model.eval()(big), (net(big) + net(big.flip(-1)).flip(-1)) / 2, atol=1e-6)
    # the setting round-trips through config.json; a config saved before it existed gets the arch's default
    Denoiser(widths=(8, 16), flip_average=False).save_pretrained(tmp_path / "off")
    assert dlhub.load("denoiser", tmp_path / "off").flip_average is False
    model.save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    config.pop("flip_average", None)
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    assert dlhub.load("denoiser", tmp_path / "old").flip_average is True
    with pytest.raises(ValueError, match="flip_average"):
        Denoiser(flip_average="no")


def test_the_flip_averaging_onnx_graph_answers_any_batch_as_pytorch(monkeypatch, tmp_path):
    from collections import OrderedDict

    import dlhub.onnx as onnx

    monkeypatch.setattr(onnx, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(onnx, "_SESSIONS", OrderedDict())
    torch.manual_seed(0)
    model = Denoiser(widths=(8, 16)).eval()
    x = np.random.default_rng(0).random((3, 1, 64, 64), dtype=np.float32)
    graph = onnx.forward_numpy(model, x[:1], "flipmean")  # exported from a batch of one, as denoise() does
    assert onnx._SESSIONS and all(s is not None for s in onnx._SESSIONS.values())  # it ran in ONNX Runtime
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(graph, expected[:1], atol=1e-5)
    batch = onnx.forward_numpy(model, x, "flipmean")  # the same graph, three faces
    assert batch.shape == expected.shape and np.allclose(batch, expected, atol=1e-5)


def test_course_mlp_is_exactly_table_3():
    """Flatten → Linear(4096 → 128) → LeakyReLU → Linear(128 → 4096): no BatchNorm, no decoder activation."""
    net = Denoiser(arch="mlp").net
    assert isinstance(net, CourseMLP)
    layers = [m for m in net.modules() if not list(m.children())]
    assert [type(m) for m in layers] == [nn.Flatten, nn.Linear, nn.LeakyReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in layers if isinstance(m, nn.Linear)] == [(4096, 128), (128, 4096)]
    assert [m for m in net.encoder] == layers[:3] and [m for m in net.decoder] == layers[3:]
    assert sum(p.numel() for p in net.parameters()) == 4096 * 128 + 128 + 128 * 4096 + 4096
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert net(torch.rand(3, 1, 64, 64)).shape == (3, 1, 64, 64)


def test_course_mlp_outputs_stay_in_0_1_when_applied():
    """Trained on the linear decoder's raw output (MSE); clamped to [0, 1] in eval mode and by denoise()."""
    model = Denoiser(arch="mlp")
    with torch.no_grad():
        model.net.decoder[0].bias.copy_(torch.linspace(-3, 3, 4096))  # raw outputs far outside [0, 1]
    x = torch.rand(2, 1, 64, 64)
    raw = model.train()(x)
    assert raw.min() < -1 and raw.max() > 2 and raw.requires_grad
    applied = model.eval()(x)
    assert applied.min() == 0 and applied.max() == 1
    assert torch.equal(applied, raw.detach().clamp(0, 1))
    out = model.denoise([Image.fromarray(np.full((40, 50), 128, np.uint8))])[0]
    assert out.size == (50, 40) and np.asarray(out).min() == 0 and np.asarray(out).max() == 255


@pytest.mark.parametrize("images, message", [
    ([Image.new("L", (2, 2))], "2×2 px: denoise.. takes images from 8 to 2048"),
    ([Image.new("L", (3000, 20))], "3000×20 px"),
    (["face.png"], "item 0 is a str, not a PIL image"),
    (Image.new("L", (32, 32)), "takes a list of PIL images"),
])
def test_denoise_rejects_bad_input(images, message):
    with pytest.raises(DataError, match=message):
        Denoiser(widths=(8,)).denoise(images)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_round_trip_is_strict_and_exact(arch, tmp_path):
    model = Denoiser(arch=arch, widths=(8, 16), noise_std=(0.1, 0.3))
    model.save_pretrained(tmp_path)
    loaded = dlhub.load("denoiser", tmp_path)
    assert loaded.arch == arch and loaded.noise_std == (0.1, 0.3)
    x = torch.rand(2, 1, loaded.image_size, loaded.image_size)
    assert torch.equal(model.eval()(x), loaded(x))


def test_bundled_model_denoises_faces_it_never_saw():
    model = dlhub.load("denoiser")
    assert model.source.startswith("bundled checkpoint")
    clean = synthetic_faces(6, seed=7).astype(np.float32) / 255.0
    noisy = add_noise(torch.from_numpy(clean), 0.2, torch.Generator().manual_seed(0)).numpy()
    denoised = model.denoise([Image.fromarray(np.round(n * 255).astype(np.uint8)) for n in noisy])
    denoised = [np.asarray(d, np.float32) / 255.0 for d in denoised]
    assert psnr(denoised, clean)["psnr"] > psnr(noisy, clean)["psnr"] + 5


def test_bundled_course_mlp_is_table_3_in_hub_layout():
    """checkpoints/denoiser-mlp: the course baseline the Space can switch to, about 4 MB, trained by train/dae.py."""
    from dlhub.tasks import BUNDLED_DIR

    folder = BUNDLED_DIR / "denoiser-mlp"
    assert {"model.safetensors", "config.json", "README.md", "metrics.json", "denoising_grid.png",
            "training_curves.png"} <= {p.name for p in folder.iterdir()}
    assert 3.5e6 < (folder / "model.safetensors").stat().st_size < 4.5e6
    model = dlhub.load("denoiser", folder)
    assert model.arch == "mlp" and model.image_size == 64 and not model.training
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())
    for sigma in (0.2, 0.3):  # on the Olivetti test people, it removes noise
        assert metrics[f"test_psnr_denoised_{sigma}"] > metrics[f"test_psnr_noisy_{sigma}"]
    assert "Table 3" in (folder / "README.md").read_text()


def test_denoise_runs_the_training_size_in_onnx_runtime_with_pytorchs_answer(monkeypatch, tmp_path):
    from collections import OrderedDict

    import dlhub.onnx as onnx

    monkeypatch.setattr(onnx, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(onnx, "_SESSIONS", OrderedDict())
    torch.manual_seed(0)
    model = Denoiser(widths=(8, 16)).eval()
    rng = np.random.default_rng(0)
    faces = [Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)),
             Image.fromarray((rng.random((40, 52)) * 255).astype(np.uint8))]
    fast = model.denoise(faces)
    assert len(onnx._SESSIONS) == 1 and all(s is not None for s in onnx._SESSIONS.values())  # 64 × 64 only
    monkeypatch.setenv("DLHUB_ONNX", "0")
    slow = model.denoise(faces)
    for a, b in zip(fast, slow):
        assert a.size == b.size and np.abs(np.asarray(a, float) - np.asarray(b, float)).max() <= 1  # rounding


def test_focused_noise_puts_its_share_near_the_judged_sigma_and_leaves_unfocused_runs_unchanged():
    from conftest import load_script

    sample_sigma = load_script("train", "dae").sample_sigma
    torch.manual_seed(0)
    sigma = sample_sigma(20_000, (0.02, 0.5), 0.2, 0.5)
    assert sigma.min() >= 0.02 and sigma.max() <= 0.5
    near = ((sigma - 0.2).abs() <= 0.05).float().mean().item()
    assert near == pytest.approx(0.5 + 0.5 * 0.1 / 0.48, abs=0.02)  # the focused half, plus the uniform half's share
    assert sample_sigma(1000, (0.02, 0.5), 0.48, 1.0, width=0.1).min() >= 0.38  # clipped to the range
    torch.manual_seed(1)
    unfocused = sample_sigma(8, (0.02, 0.5), 0.2, 0.0)
    after = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(unfocused, torch.empty(8).uniform_(0.02, 0.5)) and torch.equal(torch.rand(1), after)


def test_denoiser_benchmark_compares_each_source_through_a_model_that_never_trained_on_it():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from denoiser import never_trained_on

    models = {"bundled": ["helen", "olivetti"], "no-helen": ["olivetti", "tutorial"], "no-olivetti": ["helen"],
              "unknown": None}
    assert never_trained_on(["tutorial", "helen", "olivetti"], models) == {
        "tutorial": "bundled", "helen": "no-helen", "olivetti": "no-olivetti"}
    assert never_trained_on(["helen"], {"bundled": ["helen"], "unknown": None}) == {}
