"""The base class of every dlhub model: a torch module that saves and loads in Hugging Face Hub layout.

`save_pretrained` writes `model.safetensors` + `config.json` (the constructor's arguments: preprocessing settings and
label names travel there). Loading differs from `PyTorchModelHubMixin` on purpose:
- weights are loaded strictly: a missing or unexpected key is an error, not a silently random layer;
- only `model.safetensors` is ever read: there is no fallback to a pickled `pytorch_model.bin`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors import SafetensorError

from dlhub.errors import CheckpointError, DataError, ModelNotFoundError

WEIGHTS_NAME = "model.safetensors"
MAX_PIXELS = 50_000_000  # larger images are refused before their pixels are decoded (a 20000 × 20000 upload)


def load_weights(model: torch.nn.Module, weights_file: str | Path, map_location: str = "cpu") -> None:
    """Load a safetensors file into `model`, requiring exactly the model's keys and shapes."""
    weights_file = Path(weights_file)
    try:
        state = safetensors.torch.load_file(str(weights_file), device=map_location)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{weights_file} is corrupt or truncated ({err}); download or train it again") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_file} does not fit {type(model).__name__}: missing keys {missing}, unexpected keys {unexpected}"
        )
    wrong_shape = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if wrong_shape:
        k = wrong_shape[0]
        raise CheckpointError(
            f"{weights_file} does not fit {type(model).__name__}: {k} has shape {tuple(state[k].shape)}, "
            f"the model expects {tuple(expected[k].shape)}"
        )
    model.load_state_dict(state, strict=True)


class HubModel(
    torch.nn.Module,
    PyTorchModelHubMixin,
    library_name="pytorch",
    tags=["dlhub"],
    license="mit",
):
    """Subclasses take JSON-serialisable constructor arguments (they become config.json)."""

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ):
        if not strict:
            raise ValueError("dlhub models always load strictly; drop strict=False")
        if os.path.isdir(model_id):
            weights_file = Path(model_id) / WEIGHTS_NAME
            if not weights_file.is_file():
                raise ModelNotFoundError(f"no {WEIGHTS_NAME} in {model_id}: pass a folder written by save_pretrained")
        else:
            weights_file = hf_hub_download(
                repo_id=model_id,
                filename=WEIGHTS_NAME,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        model = cls(**model_kwargs)
        load_weights(model, weights_file, map_location)
        return model.eval()


def check_pil_images(images, method: str = "predict") -> list:
    """The list of PIL images an image model's `method` takes: a bare image, another type or an oversized image is
    one clear DataError."""
    from PIL import Image

    if isinstance(images, Image.Image):
        raise DataError(f"{method}() takes a list of PIL images: wrap a single image as [image]")
    images = list(images)
    for i, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise DataError(f"item {i} is a {type(image).__name__}, not a PIL image")
        w, h = image.size
        if w * h > MAX_PIXELS or min(w, h) < 1:
            raise DataError(f"image {i} is {w}×{h} px: use an image under {MAX_PIXELS // 1_000_000} megapixels")
    return images


def rgb_array(images: list, size: int):
    """PIL images → (B, 3, size, size) float32 NumPy array in [0, 1] (each converted to RGB and resized whole)."""
    import numpy as np
    from PIL import Image

    batch = [np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
             for image in images]
    return (np.stack(batch) / np.float32(255.0)).transpose(0, 3, 1, 2) if batch else np.zeros((0, 3, size, size),
                                                                                                 np.float32)


def rgb_batch(images: list, size: int) -> torch.Tensor:
    """PIL images → (B, 3, size, size) float tensor in [0, 1] (each converted to RGB and resized whole)."""
    return torch.from_numpy(np.ascontiguousarray(rgb_array(images, size)))
