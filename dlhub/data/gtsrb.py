"""The German Traffic Sign Recognition Benchmark as an HF DatasetDict (train / validation / test).

Layouts read:
- Kaggle: `Train/<ClassId>/<class>_<track>_<frame>.png` + `Train.csv`, `Test/NNNNN.png` + `Test.csv`
  (columns Width, Height, Roi.X1, Roi.Y1, Roi.X2, Roi.Y2, ClassId, Path), optional `signnames.csv`.
- INI (the official release): `Final_Training/Images/000NN/*.ppm` + `GT-000NN.csv`, `Final_Test/Images/*.ppm` +
  `GT-final_test.csv` (';'-separated, Filename;Width;Height;Roi.X1;...;ClassId).
- a Hub dataset id with image/label columns (through `datasets.load_dataset`, Parquet), e.g. the public
  `tanganke/gtsrb` (train + test, label a ClassLabel of the 43 classes in the official order, no track ids).
With no source: `data/gtsrb` when datasets_scripts/gtsrb.py wrote it, else the Hub's `tanganke/gtsrb`.
The validation split is made by track (the `<class>_<track>_` prefix): all frames of one physical sign stay together.
A Hub copy without a validation split and without track ids is split by class instead (stratified), and says so.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from dlhub.data import is_hub_id, load_saved_or_hub
from dlhub.errors import DataError

SIGN_NAMES = [
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)", "Speed limit (100km/h)",
    "Speed limit (120km/h)", "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop", "No vehicles",
    "Vehicles over 3.5 metric tons prohibited", "No entry", "General caution", "Dangerous curve to the left",
    "Dangerous curve to the right", "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right",
    "Road work", "Traffic signals", "Pedestrians", "Children crossing", "Bicycles crossing", "Beware of ice/snow",
    "Wild animals crossing", "End of all speed and passing limits", "Turn right ahead", "Turn left ahead",
    "Ahead only", "Go straight or right", "Go straight or left", "Keep right", "Keep left", "Roundabout mandatory",
    "End of no passing", "End of no passing by vehicles over 3.5 metric tons",
]
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0
DEFAULT_LOCAL = "data/gtsrb"  # what datasets_scripts/gtsrb.py writes
DEFAULT_HUB_ID = "tanganke/gtsrb"  # public Parquet copy: image, label (43 classes, official order); train, test
log = logging.getLogger("dlhub")


def read_sign_names(root: Path) -> list[str]:
    path = root / "signnames.csv"
    if not path.is_file():
        return list(SIGN_NAMES)
    with open(path, newline="") as f:
        rows = {int(r["ClassId"]): r["SignName"] for r in csv.DictReader(f)}
    if sorted(rows) != list(range(len(rows))):
        raise DataError(f"{path}: ClassId must run from 0 without gaps")
    return [rows[i] for i in range(len(rows))]


def _rows(path: Path, delimiter: str = ",") -> list[dict]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter=delimiter))
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err})") from None
    needed = {"ClassId"}
    if not rows or not needed <= set(rows[0]):
        raise DataError(f"{path}: expected a CSV with a ClassId column")
    return rows


def _track(name: str) -> str:
    parts = Path(name).stem.split("_")
    return "_".join(parts[:2]) if len(parts) >= 3 else Path(name).stem


def find_layout(root: Path) -> str:
    if (root / "Train.csv").is_file() and (root / "Train").is_dir():
        return "kaggle"
    if (root / "Final_Training" / "Images").is_dir():
        return "ini"
    raise DataError(f"{root} is not a GTSRB folder: expected Train/ + Train.csv (Kaggle layout) or "
                    "Final_Training/Images/ (official INI layout)")


def list_gtsrb(root) -> dict[str, list[tuple[str, int, str]]]:
    """{"train": [(image path, class id, track)], "test": [...]} for a Kaggle or INI folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: pass the GTSRB folder (Kaggle or INI layout) or a Hub dataset id")
    items: dict[str, list] = {"train": [], "test": []}
    if find_layout(root) == "kaggle":
        for split, csv_name in (("train", "Train.csv"), ("test", "Test.csv")):
            if not (root / csv_name).is_file():
                continue
            for r in _rows(root / csv_name):
                items[split].append((str(root / r["Path"]), int(r["ClassId"]),
                                     _track(r["Path"]) if split == "train" else ""))
    else:
        for class_dir in sorted((root / "Final_Training" / "Images").iterdir()):
            gt = next(class_dir.glob("GT-*.csv"), None)
            if gt is None:
                raise DataError(f"{class_dir} has no GT-{class_dir.name}.csv")
            for r in _rows(gt, ";"):
                # INI names are <track>_<frame>.ppm inside the class folder: the class makes the track id unique
                items["train"].append((str(class_dir / r["Filename"]), int(r["ClassId"]),
                                       _track(f"{class_dir.name}_{r['Filename']}")))
        test_gt = root / "GT-final_test.csv"
        test_gt = test_gt if test_gt.is_file() else root / "Final_Test" / "Images" / "GT-final_test.csv"
        if test_gt.is_file():
            images = root / "Final_Test" / "Images"
            items["test"] = [(str(images / r["Filename"]), int(r["ClassId"]), "") for r in _rows(test_gt, ";")]
    if not items["train"]:
        raise DataError(f"{root}: no training images listed")
    missing = [p for p, _, _ in items["train"][:50] + items["test"][:50] if not Path(p).is_file()]
    if missing:
        raise DataError(f"{root}: listed images are missing, e.g. {missing[0]}")
    return items


def split_by_track(items: list[tuple[str, int, str]], fraction: float = VALIDATION_FRACTION,
                   seed: int = SPLIT_SEED) -> tuple[list, list]:
    """Hold out about `fraction` of each class's tracks (at least one when the class has two or more)."""
    rng = np.random.default_rng(seed)
    tracks_by_class: dict[int, dict[str, None]] = {}  # a dict as an ordered set: fast with one track per image
    for _, label, track in items:
        tracks_by_class.setdefault(label, {})[track] = None
    held = set()
    for _, tracks in sorted(tracks_by_class.items()):  # class order fixes the random draws
        if len(tracks) >= 2:
            k = max(1, int(round(fraction * len(tracks))))
            held.update(rng.choice(sorted(tracks), size=k, replace=False).tolist())
    return [it for it in items if it[2] not in held], [it for it in items if it[2] in held]


def default_source() -> str:
    """Where GTSRB is read from when no source is given: data/gtsrb if it is here, else the public Hub copy."""
    return DEFAULT_LOCAL if Path(DEFAULT_LOCAL).exists() else DEFAULT_HUB_ID


def check_hub_reachable(repo_id: str) -> None:
    """Fail in seconds, in one line, when the Hub cannot answer: `datasets` would retry for half a minute and log
    every retry. With HF_HUB_OFFLINE=1 nothing is asked (a copy in the HF cache is used)."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    from dlhub.hub import HUB_TIMEOUT_S

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi().dataset_info(repo_id, timeout=HUB_TIMEOUT_S)
    except (HfHubHTTPError, HFValidationError):  # the Hub answered (not found, gated): load_dataset says what
        return
    except Exception as err:  # connection refused, timeout, DNS
        raise DataError(f"could not reach the Hub at {constants.ENDPOINT} for the dataset {repo_id} "
                        f"({type(err).__name__})") from None


def with_validation_split(data, source):
    """A saved or Hub GTSRB with a validation split. A copy that has none (the public Hub ones) gets one from its
    train split: 10% of each class's tracks, or, without track ids, 10% of each class's images (stratified)."""
    from datasets import ClassLabel, DatasetDict

    if "train" not in data:
        raise DataError(f"{source} has no train split (it has {sorted(data)}): pass a GTSRB dataset with one")
    columns = data["train"].column_names
    if not {"image", "label"} <= set(columns):
        raise DataError(f"{source}: GTSRB needs an image and a label column, it has {columns}")
    label = data["train"].features["label"]
    if not isinstance(label, ClassLabel):
        raise DataError(f"{source}: label must be a ClassLabel (class names in ClassId order), it is {label}")
    if str(source) == DEFAULT_HUB_ID and label.names != SIGN_NAMES and label.num_classes == len(SIGN_NAMES):
        # the official order under other names: the names the bundled model and the Space use
        log.info("dlhub: %s: its class names replaced by the official sign names (same order)", source)
        data = data.cast_column("label", ClassLabel(names=SIGN_NAMES))
    if "validation" in data:
        return data
    train = data["train"]
    labels = train["label"]
    if "track" in columns:
        tracks = list(train["track"])
    else:
        tracks = [str(i) for i in range(len(labels))]  # every image its own track: a split stratified by class
        log.info("dlhub: %s has no track ids: validation is %d%% of each class's images (stratified by class), so "
                 "frames of one sign can fall on both sides and validation accuracy reads high; test accuracy is "
                 "the number to trust", source, round(100 * VALIDATION_FRACTION))
    kept, held = split_by_track([(i, c, t) for i, (c, t) in enumerate(zip(labels, tracks))])
    return DatasetDict({"train": train.select([i for i, _, _ in kept]),
                        "validation": train.select([i for i, _, _ in held]),
                        **{name: split for name, split in data.items() if name != "train"}})


def load_gtsrb(source=None):
    """DatasetDict with train/validation(/test) splits: image (PIL), label (ClassLabel, 43 names), track (not in
    Hub copies without one). `source` None: `default_source()`."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

    defaulted = source is None
    source = default_source() if defaulted else source
    from_hub = is_hub_id(source)
    try:
        if from_hub:
            check_hub_reachable(str(source))
        saved = load_saved_or_hub(source)
    except DataError as err:
        if not (defaulted and from_hub):
            raise
        raise DataError(f"no GTSRB data: no {DEFAULT_LOCAL} here, and {' '.join(str(err).split())}. Either write "
                        f"{DEFAULT_LOCAL} from a GTSRB download with `python datasets_scripts/gtsrb.py --dataset "
                        f"PATH/TO/GTSRB`, or run where the Hub dataset {DEFAULT_HUB_ID} can be downloaded") from None
    if defaulted and from_hub:
        log.info("dlhub: no %s here: GTSRB read from the Hub dataset %s", DEFAULT_LOCAL, source)
    if saved is not None:
        return with_validation_split(saved, source)
    path = Path(str(source))
    items = list_gtsrb(path)
    names = read_sign_names(path)
    train, validation = split_by_track(items["train"])
    features = Features({"image": Image(), "label": ClassLabel(names=names), "track": Value("string")})

    def as_dataset(rows):
        return Dataset.from_dict({"image": [p for p, _, _ in rows], "label": [c for _, c, _ in rows],
                                  "track": [t for _, _, t in rows]}, features=features)

    splits = {"train": as_dataset(train), "validation": as_dataset(validation)}
    if items["test"]:
        splits["test"] = as_dataset(items["test"])
    return DatasetDict(splits)


def to_tensors(dataset, size: int, cache_dir=None):
    """(uint8 images (N, 3, size, size), int64 labels (N,)) of a split, resized once and cached as safetensors."""
    import io

    import torch
    from datasets import Image as ImageFeature
    from PIL import Image

    from dlhub.cache import cached_tensors

    def decode() -> dict:
        raw = dataset.cast_column("image", ImageFeature(decode=False))
        images = np.empty((len(raw), size, size, 3), dtype=np.uint8)
        for i, item in enumerate(raw.select_columns("image")):
            source = item["image"]
            with Image.open(io.BytesIO(source["bytes"]) if source.get("bytes") else source["path"]) as image:
                images[i] = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        return {"images": torch.from_numpy(images).permute(0, 3, 1, 2),
                "labels": torch.tensor(dataset["label"], dtype=torch.int64)}

    cache = Path(cache_dir) / f"gtsrb_{dataset._fingerprint}_{size}.safetensors" if cache_dir else None
    tensors = cached_tensors(cache, decode)
    return tensors["images"], tensors["labels"]
