"""68-point face landmarks by transfer learning: a timm ImageNet backbone and a new head to 136 outputs (x, y of each
point, scaled to [-1, 1] over the face crop): timm's classifier replaced by a fully-connected layer (head "pool"), or
a spatial head on the unpooled feature grid (head "spatial").

The timm network's modules are this model's own children, so `model.safetensors` carries timm's key names and
`config.json` timm's fields (architecture, num_classes, pretrained_cfg). A "pool" folder or Hub repo loads with
`dlhub.load("landmarks", ...)` and with `timm.create_model("hf-hub:ORG/NAME", pretrained=True)`; a "spatial" one
with dlhub only (timm cannot build its head).

Faces are cropped like the training data (HELEN as stored here: a square 1.5× the landmark box, its centre 0.098 box
sides above the landmarks' centre, resized to 224 px): `detect_and_predict` finds faces with OpenCV's bundled Haar
cascade, crops by a calibrated box → crop ratio, predicts, then crops again from the predicted points and predicts once
more (the second crop matches the training crops closely).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torch import nn

from dlhub import onnx
from dlhub.backbones import architecture
from dlhub.data.landmarks import FLIP_INDEX, N_POINTS, OUTER_EYE_CORNERS
from dlhub.errors import DataError
from dlhub.modeling import HubModel, check_pil_images, rgb_array, rgb_batch

CROP_PER_LANDMARK_BOX = 1.5  # the training crops: 1.5 × the landmark box's longer side …
CROP_SHIFT_UP = 0.098  # … centred this many box sides above the landmarks' centre (measured on HELEN's .pts)
CROP_PER_HAAR_BOX = 1.34  # a Haar face box's width → crop side, and its centre → crop centre (median over 364 HELEN
HAAR_SHIFT_DOWN = 0.064  # training faces the cascade found)
HEADS = ("pool", "spatial")
SPATIAL_CHANNELS = 64  # the spatial head's 1 × 1 reduction: 64 × 4 × 4 = 1,024 inputs to the last layer at 128 px


def pretrained_cfg(backbone: str, input_size: int) -> dict:
    """timm's pretrained_cfg for the landmark model: whole-image resize (crop_pct 1: a centre crop would move the
    face under its landmarks), the backbone's own normalisation."""
    import timm

    cfg = dict(timm.create_model(architecture(backbone), pretrained=False).pretrained_cfg)
    for key in ("url", "hf_hub_id", "tag", "label_names", "label_descriptions"):
        cfg.pop(key, None)
    cfg.update(input_size=(3, input_size, input_size), crop_pct=1.0, crop_mode="center", num_classes=2 * N_POINTS,
               fixed_input_size=False)
    return cfg


class LandmarkModel(HubModel):
    """head="pool": timm's own classifier on globally pooled features (a timm model exactly, loadable with
    `timm.create_model("hf-hub:…")`). head="spatial": the pooling is dropped and a 1 × 1 convolution to
    SPATIAL_CHANNELS channels, flattened over the (input / 32)² grid, feeds the last layer, so the head sees where each
    feature is; timm cannot build that head, so such a repo loads with dlhub only (its input size is fixed)."""

    def __init__(self, backbone: str = "efficientnet_lite0", architecture: str = "tf_efficientnet_lite0",
                 num_classes: int = 2 * N_POINTS, num_features: int = 1280, drop_rate: float = 0.2,
                 pretrained_cfg: dict | None = None, head: str = "pool", flip_test: bool = False):
        super().__init__()
        import timm

        if num_classes != 2 * N_POINTS:
            raise ValueError(f"a landmark model has {2 * N_POINTS} outputs")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}: choose one of {HEADS}")
        cfg = pretrained_cfg or {}
        self.input_size = int(cfg.get("input_size", (3, 224, 224))[-1])
        if head == "pool":
            net = timm.create_model(architecture, pretrained=False, num_classes=num_classes, drop_rate=drop_rate)
        else:  # features only: timm's classifier and pooling become identities
            net = timm.create_model(architecture, pretrained=False, num_classes=0, global_pool="")
        for name, child in net.named_children():  # timm's modules, registered here: timm's key names
            self.add_module(name, child)
        object.__setattr__(self, "net", net)  # runs timm's forward on those same modules
        if head == "spatial":
            if self.input_size % 32:
                raise ValueError(f"a spatial head needs an input size that is a multiple of 32, not {self.input_size}")
            cells = (self.input_size // 32) ** 2
            self.spatial_head = nn.Sequential(
                nn.Conv2d(num_features, SPATIAL_CHANNELS, 1, bias=False), nn.BatchNorm2d(SPATIAL_CHANNELS),
                nn.ReLU(inplace=True), nn.Flatten(), nn.Dropout(drop_rate), nn.Linear(SPATIAL_CHANNELS * cells,
                                                                                    num_classes))
        self.backbone, self.architecture, self.head_type = backbone, architecture, head
        self.flip_test = bool(flip_test)
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def create(cls, backbone: str = "efficientnet_lite0", input_size: int = 224, drop_rate: float = 0.2,
               head: str = "pool", flip_test: bool = False):
        import timm

        arch = architecture(backbone)
        features = timm.create_model(arch, pretrained=False, num_classes=0).num_features
        cfg = pretrained_cfg(backbone, input_size)
        if head == "spatial":
            cfg["fixed_input_size"] = True  # the flattened grid has (input / 32)² cells
        return cls(backbone=backbone, architecture=arch, num_features=features, drop_rate=drop_rate,
                   pretrained_cfg=cfg, head=head, flip_test=flip_test)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB in [0, 1] → (B, 68, 2) coordinates in [-1, 1] over the crop. With flip_test, in eval
        mode, the mirrored crop is predicted too (in the same batch) and its points, mirrored back, are averaged in."""
        if self.flip_test and not self.training:
            # view(2, -1, …), not slices at len(x): an exported graph keeps a free batch size
            plain, flipped = self.points(torch.cat([x, x.flip(-1)])).view(2, -1, N_POINTS, 2)
            mirrored = flipped[:, torch.as_tensor(FLIP_INDEX, device=x.device)] * flipped.new_tensor([-1.0, 1.0])
            return (plain + mirrored) / 2
        return self.points(x)

    def points(self, x: torch.Tensor) -> torch.Tensor:
        """One pass of the network: (B, 3, S, S) in [0, 1] → (B, 68, 2) in [-1, 1]."""
        self.net.training = self.training  # timm's head dropout reads it; the children keep their own modes
        x = (x - self.mean) / self.std
        if self.head_type == "spatial":
            if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
                raise DataError(f"this landmark model takes {self.input_size} × {self.input_size} crops")
            return self.spatial_head(self.net.forward_features(x)).view(-1, N_POINTS, 2)
        return self.net(x).view(-1, N_POINTS, 2)

    def stages(self) -> list[list[nn.Module]]:
        """The backbone's stages from input to output (the unit of gradual unfreezing); the classifier is apart."""
        if hasattr(self.net, "blocks"):  # EfficientNet
            blocks = list(self.net.blocks)
            return [[self.net.conv_stem, self.net.bn1]] + [[b] for b in blocks[:-1]] + \
                [[blocks[-1], self.net.conv_head, self.net.bn2]]
        return [[self.net.conv1, self.net.bn1]] + [[getattr(self.net, f"layer{i}")] for i in range(1, 5)]  # ResNet

    def head(self) -> nn.Module:
        """The new layers (trained from the start, at the head's learning rate)."""
        return self.spatial_head if self.head_type == "spatial" else self.net.get_classifier()

    def output_layer(self) -> nn.Linear:
        """The last layer (its bias starts at the mean face)."""
        return self.spatial_head[-1] if self.head_type == "spatial" else self.net.get_classifier()

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """ImageNet weights into everything but the new classifier."""
        classifier = {f"{self.net.pretrained_cfg.get('classifier', 'classifier')}.weight",
                      f"{self.net.pretrained_cfg.get('classifier', 'classifier')}.bias"}
        if self.head_type == "spatial":  # timm's classifier is an identity here: its weights are simply not wanted
            state = {k: v for k, v in state.items() if k not in classifier}
            classifier = set()
        missing, unexpected = self.net.load_state_dict({k: v for k, v in state.items() if k not in classifier},
                                                       strict=False)
        if set(missing) != classifier or unexpected:
            raise DataError(f"the pretrained {self.backbone} weights do not fit: missing {missing}, "
                            f"unexpected {unexpected}")

    def preprocess(self, faces: list) -> torch.Tensor:
        """PIL face crops → (B, 3, S, S) float tensor in [0, 1], each resized whole (no crop)."""
        return rgb_batch(check_pil_images(faces), self.input_size)

    @torch.no_grad()
    def predict(self, faces: list) -> list[np.ndarray]:
        """PIL face crops (cropped like the training faces) → one (68, 2) array each, in that crop's pixels."""
        if self.training:
            self.eval()
        faces = check_pil_images(faces)
        if not faces:
            return []
        # NumPy in and out of the network (ONNX Runtime on the CPU): no PyTorch op beside it
        name = "landmarks-flip" if self.flip_test else "landmarks"  # the graph's name: what it computes
        points = (onnx.forward_numpy(self, rgb_array(faces, self.input_size), name) + 1) / 2  # [0, 1] of the crop
        return [p * np.array(face.size, np.float32) for p, face in zip(points, faces)]

    def detect_and_predict(self, photo: Image.Image, refine: bool = True) -> list[dict]:
        """Every face OpenCV's Haar cascade finds in a photo: [{"box": (x, y, w, h), "landmarks": (68, 2) in the
        photo's pixels}], largest face first."""
        results, rgb = [], photo.convert("RGB")  # converted once, cropped per face and pass
        for box in detect_faces(photo):
            crop = crop_from_haar_box(box)
            points = self._predict_in(rgb, crop)
            if refine:
                points = self._predict_in(rgb, crop_from_landmarks(points))
            results.append({"box": tuple(int(v) for v in box), "landmarks": points})
        return results

    def _predict_in(self, photo: Image.Image, crop: tuple[float, float, float]) -> np.ndarray:
        cx, cy, side = crop
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        face = photo.crop(tuple(round(v) for v in box))  # outside the photo: black, like padding
        points = self.predict([face])[0] * (side / face.size[0])
        return points + np.array([round(box[0]), round(box[1])], np.float32)


def crop_from_landmarks(points: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the training-style square crop around 68 points."""
    lo, hi = points.min(0), points.max(0)
    side = float((hi - lo).max())
    return float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2 - CROP_SHIFT_UP * side), CROP_PER_LANDMARK_BOX * side


def crop_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in whole pixels of the training-style crop around 68 points."""
    cx, cy, side = crop_from_landmarks(np.asarray(points, np.float32))
    return tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))


def crop_like_training(image: Image.Image, points: np.ndarray, size: int = 224) -> tuple[Image.Image, np.ndarray]:
    """A photo and its 68 points → the training-style RGB crop (outside the photo: black), resized to size × size
    like HELEN's stored crops, and the points in that crop's pixels: how faces from other sources are measured."""
    box = crop_box(points)
    face = image.convert("RGB").crop(box)
    scale = np.array([size / face.size[0], size / face.size[1]], np.float32)
    return (face.resize((size, size), Image.Resampling.LANCZOS),
            (np.asarray(points, np.float32) - np.array(box[:2], np.float32)) * scale)


def crop_from_haar_box(box) -> tuple[float, float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2 + HAAR_SHIFT_DOWN * w, CROP_PER_HAAR_BOX * w


def detect_faces(photo: Image.Image) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of frontal faces, largest first (OpenCV's bundled Haar cascade: no download)."""
    import cv2

    gray = np.asarray(photo.convert("L"))
    scale = min(1.0, 1024 / max(gray.shape))  # big photos are searched at ≤ 1024 px, boxes scaled back
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    min_side = max(24, int(0.05 * min(small.shape)))
    faces = cascade.detectMultiScale(cv2.equalizeHist(small), scaleFactor=1.1, minNeighbors=6,
                                     minSize=(min_side, min_side))
    boxes = [tuple(int(round(v / scale)) for v in f) for f in faces]
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def nme(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per face: mean point-to-point error / distance between the outer eye corners (iBUG points 37 and 46)."""
    a, b = OUTER_EYE_CORNERS
    inter_ocular = np.linalg.norm(true[:, a] - true[:, b], axis=1)
    return np.linalg.norm(predicted - true, axis=2).mean(1) / inter_ocular


def wing_loss(predicted: torch.Tensor, true: torch.Tensor, width: float = 10 / 64, curvature: float = 2 / 64
              ) -> torch.Tensor:
    """Feng et al. 2018: logarithmic for errors below `width` (small and medium errors weigh more than under L1),
    linear above it. Defaults: 10 and 2 px at 128 px, in the model's [-1, 1] units (64 px per unit)."""
    error = (predicted - true).abs()
    offset = width - width * math.log1p(width / curvature)
    return torch.where(error < width, width * torch.log1p(error / curvature), error - offset).mean()


def augment(images: torch.Tensor, points: torch.Tensor, max_degrees: float = 15, scale=(0.9, 1.1),
            max_shift: float = 0.05, flip: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip (with the 68-point left/right swap), rotation, scale and shift applied to images (B, 3, S, S in
    [0, 1]) and their points (B, 68, 2 in [-1, 1]) together, then colour jitter on the images alone."""
    b, device = images.shape[0], images.device
    u = lambda lo, hi: torch.empty(b, device=device).uniform_(lo, hi)  # noqa: E731
    angle, s = u(-max_degrees, max_degrees) * math.pi / 180, u(*scale)
    mirrored = torch.rand(b, device=device) < flip
    sign = torch.where(mirrored, -1.0, 1.0)
    # output point p_out = R·S·M p_in + t; grid_sample needs the inverse (output → input)
    cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
    forward = torch.stack([torch.stack([cos * sign, -sin], 1), torch.stack([sin * sign, cos], 1)], 1)  # (B, 2, 2)
    shift = torch.stack([u(-max_shift, max_shift), u(-max_shift, max_shift)], 1) * 2
    inverse = torch.linalg.inv(forward)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], 2)
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    images = nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    points = torch.where(mirrored.view(-1, 1, 1), points[:, torch.as_tensor(FLIP_INDEX, device=device)], points)
    points = points @ forward.transpose(1, 2) + shift.unsqueeze(1)
    gray = images.mean(1, keepdim=True)
    images = gray + (images - gray) * u(0.7, 1.3).view(-1, 1, 1, 1)
    mean = images.mean((1, 2, 3), keepdim=True)
    images = mean + (images - mean) * u(0.7, 1.3).view(-1, 1, 1, 1)
    return (images * u(0.7, 1.3).view(-1, 1, 1, 1)).clamp(0, 1), points
