"""The pieces every train script shares (dlhub/training.py, dlhub/cache.py): selection on validation, the final
classification report, and "compute once, cache as safetensors"."""

import numpy as np
import torch

from dlhub.cache import cached_tensors
from dlhub.training import classification_report, keep_best


def test_keep_best_keeps_the_best_epoch_and_breaks_ties_in_order():
    model, state, best = torch.nn.Linear(2, 1), {}, None
    for epoch, (accuracy, loss) in enumerate([(0.8, 0.5), (0.9, 0.4), (0.9, 0.3), (0.9, 0.35), (0.7, 0.1)], 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        best = keep_best(state, epoch, (accuracy, -loss), model, best, best_accuracy=accuracy, best_loss=loss)
    assert state["best_epoch"] == 3 and state["best_accuracy"] == 0.9 and state["best_loss"] == 0.3
    assert torch.equal(best["weight"], torch.full((1, 2), 3.0))  # a copy taken at epoch 3, not the live weights
    state, best = {}, None
    for epoch, mse in enumerate([5.0, 3.0, 4.0], 1):  # lower is better: the score is −MSE
        best = keep_best(state, epoch, -mse, model, best, best_mse=mse)
    assert state["best_epoch"] == 2 and state["best_mse"] == 3.0


def test_classification_report():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.05, 0.9, 0.05]])
    labels = np.array([0, 1, 1, 2, 2])
    report = classification_report(probs, labels, ["a", "b", "c"])
    assert report["accuracy"] == 0.6 and report["errors"] == 2
    assert report["confusion"].tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert report["per_class_accuracy"] == {"a": 1.0, "b": 0.5, "c": 0.5}
    assert report["worst_mistakes"].tolist() == [4, 2]  # the most confident mistake first


def test_cached_tensors_compute_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(6).view(2, 3).t()}  # not contiguous: saved all the same

    path = tmp_path / "sub" / "x.safetensors"
    first, second = cached_tensors(path, compute), cached_tensors(path, compute)
    assert len(calls) == 1 and torch.equal(first["x"], second["x"]) and not list(path.parent.glob("*.tmp"))
    assert len(cached_tensors(None, compute)) == 1 and len(calls) == 2  # no path: computed, nothing kept


def test_cached_features_makes_an_augmented_copy_only_when_it_is_not_cached(tmp_path):
    from types import SimpleNamespace

    from dlhub.commands import cached_features

    model = SimpleNamespace(features=lambda x: x.mean(dim=1, keepdim=True))  # (N, window) → (N, 1)
    made = []

    def make_copy():
        made.append(1)
        return np.ones((3, 8), np.float32)

    path = tmp_path / "copy.safetensors"
    first = cached_features(model, make_copy, path, show=False)
    second = cached_features(model, make_copy, path, show=False)
    assert len(made) == 1 and first.shape == (3, 1) and torch.equal(first, second)
    assert torch.equal(cached_features(model, np.zeros((2, 8), np.float32), None, show=False), torch.zeros(2, 1))
