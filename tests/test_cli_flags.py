"""Every script spells the data and output flags the same way (--dataset, --output_dir); the older spellings
(--data-dir, --data, --output-dir) still work and mean the same."""

import importlib.util

import pytest

from conftest import ROOT

TRAIN = ["regression", "dae", "gtsrb", "landmarks", "commands"]


def script(folder: str, name: str):
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", TRAIN)
@pytest.mark.parametrize("old", ["--data-dir", "--data"])
def test_train_scripts_read_one_spelling_and_the_old_ones(name, old, tmp_path):
    parse = script("train", name).parse_args
    new = parse(["--dataset", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    aliased = parse([old, str(tmp_path), "--output-dir", str(tmp_path / "out")])
    assert new.dataset == aliased.dataset == str(tmp_path)
    assert new.output_dir == aliased.output_dir == str(tmp_path / "out")
    assert vars(new) == vars(aliased)


@pytest.mark.parametrize("name", ["task1", "faces", "gtsrb", "landmarks", "speech_commands"])
def test_dataset_scripts_take_the_same_flags(name, tmp_path, monkeypatch):
    """The dataset scripts parse --dataset/--output_dir too: a missing folder fails naming the path given."""
    main = script("datasets_scripts", name).main
    missing = tmp_path / "no_such_data"
    with pytest.raises(Exception, match="no_such_data"):
        main(["--dataset", str(missing), "--output_dir", str(tmp_path / "out")])
