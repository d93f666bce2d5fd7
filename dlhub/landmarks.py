"""68-point face landmarks by transfer learning: a timm ImageNet backbone whose classifier is replaced by a fully-
connected layer to 136 outputs (x, y of each point, scaled to [-1, 1] over the face crop).

The timm network's modules are this model's own children, so `model.safetensors` carries timm's key names and
`config.json` timm's fields (architecture, num_classes, pretrained_cfg): the same folder or Hub repo loads with
`dlhub.load("landmarks", ...)` and with `timm.create_model("hf-hub:ORG/NAME", pretrained=True)`.

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
from dlhub.modeling import HubModel, check_pil_images, rgb_batch

CROP_PER_LANDMARK_BOX = 1.5  # the training crops: 1.5 × the landmark box's longer side …
CROP_SHIFT_UP = 0.098  # … centred this many box sides above the landmarks' centre (measured on HELEN's .pts)
CROP_PER_HAAR_BOX = 1.34  # a Haar face box's width → crop side, and its centre → crop centre (median over 364 HELEN
HAAR_SHIFT_DOWN = 0.064  # training faces the cascade found)


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
    def __init__(self, backbone: str = "efficientnet_lite0", architecture: str = "tf_efficientnet_lite0",
                 num_classes: int = 2 * N_POINTS, num_features: int = 1280, drop_rate: float = 0.2,
                 pretrained_cfg: dict | None = None):
        super().__init__()
        import timm

        if num_classes != 2 * N_POINTS:
            raise ValueError(f"a landmark model has {2 * N_POINTS} outputs")
        net = timm.create_model(architecture, pretrained=False, num_classes=num_classes, drop_rate=drop_rate)
        for name, child in net.named_children():  # timm's modules, registered here: timm's key names
            self.add_module(name, child)
        object.__setattr__(self, "net", net)  # runs timm's forward on those same modules
        self.backbone, self.architecture = backbone, architecture
        cfg = pretrained_cfg or {}
        self.input_size = int(cfg.get("input_size", (3, 224, 224))[-1])
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.5, 0.5, 0.5))).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def create(cls, backbone: str = "efficientnet_lite0", input_size: int = 224, drop_rate: float = 0.2):
        import timm

        arch = architecture(backbone)
        features = timm.create_model(arch, pretrained=False, num_classes=0).num_features
        return cls(backbone=backbone, architecture=arch, num_features=features, drop_rate=drop_rate,
                   pretrained_cfg=pretrained_cfg(backbone, input_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB in [0, 1] → (B, 68, 2) coordinates in [-1, 1] over the crop."""
        self.net.training = self.training  # timm's head dropout reads it; the children keep their own modes
        return self.net((x - self.mean) / self.std).view(-1, N_POINTS, 2)

    def stages(self) -> list[list[nn.Module]]:
        """The backbone's stages from input to output (the unit of gradual unfreezing); the classifier is apart."""
        if hasattr(self.net, "blocks"):  # EfficientNet
            blocks = list(self.net.blocks)
            return [[self.net.conv_stem, self.net.bn1]] + [[b] for b in blocks[:-1]] + \
                [[blocks[-1], self.net.conv_head, self.net.bn2]]
        return [[self.net.conv1, self.net.bn1]] + [[getattr(self.net, f"layer{i}")] for i in range(1, 5)]  # ResNet

    def head(self) -> nn.Module:
        return self.net.get_classifier()

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """ImageNet weights into everything but the new classifier."""
        classifier = {f"{self.net.pretrained_cfg.get('classifier', 'classifier')}.weight",
                      f"{self.net.pretrained_cfg.get('classifier', 'classifier')}.bias"}
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
        self.eval()
        x = self.preprocess(faces).to(self.mean.device)
        if not len(x):
            return []
        points = ((onnx.forward(self, x, "landmarks") + 1) / 2).cpu().numpy()  # [0, 1] of the crop
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
