"""Face denoising autoencoders: the course's MLP (Table 3) and a small convolutional encoder–decoder with skips.

Both take grayscale images in [0, 1] and return the denoised image in [0, 1]. The MLP works on 64 × 64 images (the
course's face_data.npy size; `denoise()` resizes other images in and out); the convolutional one is fully
convolutional, trained on 64 × 64 faces and applied at any size.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from dlhub import onnx
from dlhub.errors import DataError
from dlhub.modeling import HubModel

MIN_SIDE, MAX_SIDE = 8, 2048  # denoise() refuses images outside these sides, with a message
SMALL_IMAGE = 128 * 128  # flip averaging runs the image and its mirror as one batch up to this many pixels


def add_noise(clean: torch.Tensor, sigma, generator: torch.Generator | None = None) -> torch.Tensor:
    """x̃ = clip(x + σ·ε, 0, 1), ε ~ N(0, 1); sigma is a float or one value per image (shape (B,))."""
    sigma = torch.as_tensor(sigma, dtype=clean.dtype, device=clean.device)
    if sigma.ndim == 1:
        sigma = sigma.view(-1, *([1] * (clean.ndim - 1)))
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return (clean + sigma * noise).clamp(0.0, 1.0)


class CourseMLP(nn.Module):
    """The course's Table 3, exactly: encoder Flatten → Linear(H·W → 128) → LeakyReLU; decoder Linear(128 → H·W),
    linear (the activation is in the encoder only). Trained with MSE on the decoder's raw output; in eval mode the
    output is clamped to [0, 1] (a sigmoid would add a non-linearity that Table 3's decoder does not have)."""

    def __init__(self, image_size: int = 64, code: int = 128):
        super().__init__()
        pixels = image_size * image_size
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, code), nn.LeakyReLU())
        self.decoder = nn.Sequential(nn.Linear(code, pixels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.encoder(x)).view_as(x)
        return y if self.training else y.clamp(0.0, 1.0)  # training: the gradient of every pixel, even out of range


def conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvUNet(nn.Module):
    """Encoder (widths, each halving the resolution) → decoder with skip connections; it predicts the noise and
    subtracts it (residual learning), which keeps the identity easy and generalises across image content."""

    def __init__(self, widths=(32, 64, 128)):
        super().__init__()
        widths = list(widths)
        self.down = nn.ModuleList()
        cin = 1
        for w in widths:
            self.down.append(conv_block(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = conv_block(widths[-1], widths[-1] * 2)
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        cin = widths[-1] * 2
        for w in reversed(widths):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.fuse.append(conv_block(2 * w, w))
            cin = w
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.multiple = 2 ** len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        y = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > max(pad_h, pad_w) else "replicate")
        skips = []
        for block in self.down:
            y = block(y)
            skips.append(y)
            y = self.pool(y)
        y = self.bottleneck(y)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips)):
            y = fuse(torch.cat([up(y), skip], dim=1))
        noise = self.head(y)[..., :h, :w]
        return x - noise


ARCHS = {"mlp": CourseMLP, "conv": ConvUNet}


class Denoiser(HubModel):
    """`arch` "mlp" (the course's Table 3) or "conv" (ConvUNet). `flip_average` (default: on for conv): in eval mode
    the answer is the mean of the network's outputs for the image and for its mirror image, mirrored back. Training
    flips faces, so both are equally good guesses with partly independent errors, and their mean is better on the
    validation faces of each source that has them (benchmarks/denoiser.py measures by how much), for twice the
    compute. Off for the MLP: the course's Table 3 model, as the course applies it. It is a setting of config.json:
    pass it to the constructor (or `from_pretrained`) to change it for good."""

    def __init__(self, arch: str = "conv", image_size: int = 64, widths=(32, 64, 128), noise_std=(0.2, 0.2),
                 flip_average: bool | None = None):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}: choose one of {sorted(ARCHS)}")
        self.arch, self.image_size = arch, int(image_size)
        self.noise_std = tuple(float(s) for s in noise_std)  # the σ range it was trained on
        if flip_average is not None and not isinstance(flip_average, bool):
            raise ValueError(f"flip_average is true, false or null (the default for the arch), not {flip_average!r}")
        self.flip_average = arch == "conv" if flip_average is None else flip_average
        self.net = CourseMLP(self.image_size) if arch == "mlp" else ConvUNet(tuple(widths))

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [0, 1] → (B, 1, H, W); H = W = image_size (64) for the MLP, any size for conv. In eval mode
        with `flip_average`, the mean of the image's answer and its mirror image's (one batch of 2B)."""
        if self.training or not self.flip_average:
            return self.net(noisy)
        if noisy.shape[-2] * noisy.shape[-1] > SMALL_IMAGE:  # one pass after the other: half the peak memory
            return (self.net(noisy) + self.net(noisy.flip(-1)).flip(-1)) / 2
        plain, mirrored = self.net(torch.cat([noisy, noisy.flip(-1)])).view(2, *noisy.shape)  # one batch of 2B:
        return (plain + mirrored.flip(-1)) / 2  # the view keeps B free in an exported ONNX graph

    @torch.no_grad()
    def denoise(self, images: list) -> list[Image.Image]:
        """Denoise PIL images (any mode); returns grayscale PIL images of the same sizes."""
        if isinstance(images, Image.Image):
            raise DataError("denoise() takes a list of PIL images: wrap a single image as [image]")
        outputs = []
        device = next(self.parameters()).device
        if self.training:
            self.eval()
        for i, image in enumerate(images):
            if not isinstance(image, Image.Image):
                raise DataError(f"item {i} is a {type(image).__name__}, not a PIL image")
            w, h = image.size
            if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
                raise DataError(f"image {i} is {w}×{h} px: denoise() takes images from {MIN_SIDE} to {MAX_SIDE} px "
                                "on each side; resize it first")
            gray = image.convert("L")
            if self.arch == "mlp":  # a fixed input size: resize in and out
                gray = gray.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            x = (np.asarray(gray, dtype=np.float32) / np.float32(255.0))[None, None]
            if gray.size == (self.image_size, self.image_size):  # ONNX Runtime (one graph per input shape: the
                graph = "denoiser-flipmean" if self.flip_average else "denoiser"  # training size; others in PyTorch)
                y = onnx.forward_numpy(self, x, graph)[0, 0]
            else:
                y = self(torch.from_numpy(x).to(device))[0, 0].cpu().numpy()
            y = np.clip(y, 0.0, 1.0)
            out = Image.fromarray(np.round(y * 255.0).astype(np.uint8))
            outputs.append(out.resize((w, h), Image.Resampling.BILINEAR) if out.size != (w, h) else out)
        return outputs
