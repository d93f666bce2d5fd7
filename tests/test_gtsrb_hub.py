"""GTSRB with no local data/gtsrb: the public Hub copy (here a tiny `tanganke/gtsrb` on the test Hub: image, label a
ClassLabel of the 43 classes in the official order under other names, train and test, no track ids), its validation
split stratified by class and said so, and one line naming both ways to get data when the Hub cannot be had."""

import json
import logging
import os
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ACCELERATE_CPU, ROOT

import dlhub
from dlhub.data.gtsrb import DEFAULT_HUB_ID, SIGN_NAMES, load_gtsrb, with_validation_split
from dlhub.errors import DataError
from dlhub.sign_drawings import DRAWN_CLASSES, draw_sign

TRAIN_PER_CLASS, TEST_PER_CLASS = 10, 2


def tiny_dataset(names, per_class: dict[str, int], with_tracks: bool = False):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

    columns = {"image": Image(), "label": ClassLabel(names=names)}
    if with_tracks:
        columns["track"] = Value("string")
    splits = {}
    for offset, (split, n) in enumerate(per_class.items()):
        rows = [(c, k) for c in DRAWN_CLASSES for k in range(n)]
        data = {"image": [draw_sign(c, 40, seed=10_000 * offset + 100 * c + k) for c, k in rows],
                "label": [c for c, _ in rows]}
        if with_tracks:
            data["track"] = [f"{c}_{k // 2}" for c, k in rows]  # two frames per track
        splits[split] = Dataset.from_dict(data, features=Features(columns))
    return DatasetDict(splits)


@pytest.fixture(scope="module")
def hub_gtsrb(hub):
    """The test Hub's `tanganke/gtsrb`: Parquet through push_to_hub, as the real one is stored."""
    data = tiny_dataset([f"class {i}" for i in range(len(SIGN_NAMES))],
                        {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS})
    data.push_to_hub(DEFAULT_HUB_ID)
    assert any(p.endswith(".parquet") for p in hub.state.repos[("dataset", DEFAULT_HUB_ID)].commits[-1][1])
    return DEFAULT_HUB_ID


def test_no_local_data_reads_the_hub_copy_with_a_stratified_validation_split(hub_gtsrb, tmp_path, monkeypatch,
                                                                              caplog):
    monkeypatch.chdir(tmp_path)  # no data/gtsrb here
    with caplog.at_level(logging.INFO, logger="dlhub"):
        data = load_gtsrb()
    assert sorted(data) == ["test", "train", "validation"]
    assert data["train"].features["label"].names == SIGN_NAMES  # the official names, by index
    assert "track" not in data["train"].column_names
    assert data["test"].num_rows == len(DRAWN_CLASSES) * TEST_PER_CLASS
    # stratified: 10% of each class's 10 images, so one of each class, and none lost
    assert Counter(data["validation"]["label"]) == {c: 1 for c in DRAWN_CLASSES}
    assert Counter(data["train"]["label"]) == {c: TRAIN_PER_CLASS - 1 for c in DRAWN_CLASSES}
    log = caplog.text
    assert f"GTSRB read from the Hub dataset {DEFAULT_HUB_ID}" in log
    assert "has no track ids" in log and "stratified by class" in log
    assert load_gtsrb()["validation"]["image"][0].tobytes() == data["validation"]["image"][0].tobytes()  # same split


def test_local_data_comes_before_the_hub(hub_gtsrb, hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_dataset(SIGN_NAMES, {"train": 3, "validation": 1, "test": 1}, with_tracks=True).save_to_disk("data/gtsrb")
    asked = len(hub.state.requests)
    data = load_gtsrb()
    assert data["validation"].num_rows == len(DRAWN_CLASSES) and len(hub.state.requests) == asked


def test_hub_copy_with_track_ids_is_split_by_track():
    data = with_validation_split(tiny_dataset(SIGN_NAMES, {"train": 20}, with_tracks=True), "org/gtsrb-tracks")
    train, validation = set(data["train"]["track"]), set(data["validation"]["track"])
    assert not train & validation and len(validation) == len(DRAWN_CLASSES)  # 10% of each class's 10 tracks
    assert data["validation"].num_rows == 2 * len(DRAWN_CLASSES)  # whole tracks: both frames


def test_hub_copy_without_labels_is_refused():
    data = tiny_dataset(SIGN_NAMES, {"train": 1}).rename_column("label", "class_id")
    with pytest.raises(DataError, match="GTSRB needs an image and a label column"):
        with_validation_split(data, "org/other")


def run_in(cwd, *args, env=None):
    """A command run from `cwd` (a folder without data/gtsrb), with the test Hub's environment."""
    return subprocess.run(list(args), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_train_script_with_no_arguments_trains_on_the_hub_copy(hub_gtsrb, tmp_path):
    result = run_in(tmp_path, *ACCELERATE_CPU, str(ROOT / "train/gtsrb.py"), "--epochs", "1", "--blocks", "8", "16",
                    "--input_size", "32", "--batch_size", "16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"GTSRB read from the Hub dataset {DEFAULT_HUB_ID}" in result.stderr
    assert "has no track ids: validation is 10% of each class's images (stratified by class)" in result.stderr
    out = tmp_path / "outputs" / "gtsrb"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_images"] == len(DRAWN_CLASSES) * TEST_PER_CLASS
    card = (out / "README.md").read_text()
    assert f"Hub dataset `{DEFAULT_HUB_ID}`" in card and "stratified by class" in card
    assert "whole tracks" not in card and "19,604" not in card  # not the description of the project's local copy
    assert dlhub.load("signs", out).labels == SIGN_NAMES


@pytest.mark.slow
@pytest.mark.parametrize("env", [{"HF_ENDPOINT": "http://127.0.0.1:9"}, {"HF_HUB_OFFLINE": "1"}],
                         ids=["unreachable", "offline"])
def test_no_data_anywhere_is_one_line_naming_both_ways(tmp_path, env):
    env = {**env, "HF_HOME": str(tmp_path / "hf")}  # an empty cache: the test Hub's copy is not in it
    result = run_in(tmp_path, sys.executable, str(ROOT / "train/gtsrb.py"), env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("gtsrb.py: error: no GTSRB data: no data/gtsrb here")
    assert "`python datasets_scripts/gtsrb.py --dataset PATH/TO/GTSRB`" in lines[0]
    assert f"the Hub dataset {DEFAULT_HUB_ID} can be downloaded" in lines[0]
