"""The final test of each task, written once: the train scripts call these on their test split at the end of a run,
and `python -m dlhub.evaluate` calls them on any saved model and dataset, so the two report the same numbers.

Every function takes the model (bare or prepared by Accelerate), what it reads for one split, and the Accelerator;
its metrics are named `<split>_<metric>` as the train scripts' metrics.json names them (`test_accuracy`, …; split ""
leaves the prefix out). Results are gathered across processes without the padding duplicates, so one process and many
agree.

Each headline figure comes with its 95% interval and the number of items it is over, as `<metric>_ci95: [low, high]`
and `<metric>_n` (dlhub.metrics.intervals): Wilson for proportions (accuracy, rejection, failure rate), a percentile
bootstrap of the per-item values for means (NME, MSE per face, PSNR and its gain per image).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dlhub.metrics.intervals import mean_fields, proportion_fields
from dlhub.training import classification_report, classify_loader

# Landmark errors are reported in px² of a 224 × 224 crop, the course's unit, whatever size the model reads
LANDMARK_REPORT_SIZE = 224
LANDMARK_FAILURE_NME = 0.10  # a face whose NME is above this counts as a failure (the usual 300-W threshold)
DENOISE_TEST_SIGMAS = (0.1, 0.2, 0.3)
# The noise of every evaluation image is drawn from this seed (plus 1000·σ): the same noisy images in every run, for
# every architecture, in train/dae.py's validation and final test and in `python -m dlhub.evaluate`
EVAL_NOISE_SEED = 1234


def _unwrapped(model, accelerator):
    return accelerator.unwrap_model(model) if accelerator is not None else model


def _key(split: str, name: str) -> str:
    return f"{split}_{name}" if split else name


def _bar(iterable, accelerator, desc: str):
    return tqdm(iterable, desc=desc, leave=False, disable=accelerator is not None and not accelerator.is_main_process)


# -- signs ---------------------------------------------------------------------------------------------------------
def signs_test(model, loader, accelerator, split: str = "test") -> tuple[dict, dict]:
    """(metrics, report) of a sign classifier on a loader of (uint8 images (B, 3, S, S), labels): accuracy, errors,
    mean cross-entropy and per-class accuracy; the report (`classification_report`, plus `probs` and `labels`) holds
    what the figures need (confusion matrix, most confident mistakes)."""
    names = list(_unwrapped(model, accelerator).labels)
    probs, labels, loss = classify_loader(model, _bar(loader, accelerator, f"{split or 'test'} images"), accelerator,
                                          lambda images: images.float() / 255.0)
    report = classification_report(probs, labels, names)
    metrics = {_key(split, "accuracy"): report["accuracy"], _key(split, "images"): int(len(labels)),
               _key(split, "errors"): report["errors"], _key(split, "loss"): loss,
               "per_class_accuracy": report["per_class_accuracy"]}
    if len(labels):
        metrics.update(proportion_fields(_key(split, "accuracy"), len(labels) - report["errors"], len(labels)))
    return metrics, {**report, "probs": probs, "labels": labels}


# -- landmarks -------------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict_landmarks(model, loader, accelerator) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) points in [-1, 1] over the crop, from a loader of (uint8 images, points in [-1, 1])."""
    model.eval()
    predicted, true = [], []
    for images, points in loader:
        out = accelerator.gather_for_metrics((model(images.float() / 255.0), points))
        predicted.append(out[0].float().cpu().numpy())
        true.append(out[1].cpu().numpy())
    return np.concatenate(predicted), np.concatenate(true)


def landmark_mse_px2(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error of points in [-1, 1] coordinates, in px² of a 224 × 224 crop."""
    return float(((predicted - true) ** 2).mean()) * (LANDMARK_REPORT_SIZE / 2) ** 2


def landmarks_test(model, loader, accelerator, split: str = "test") -> tuple[dict, dict]:
    """(metrics, outputs) of a landmark model on a loader of (uint8 images, points in [-1, 1]): MSE in px² at 224,
    mean NME (outer eye corners) and the failure rate (NME above 0.10); outputs hold predicted and true points and
    the per-face NME."""
    from dlhub.landmarks import nme

    predicted, true = predict_landmarks(model, _bar(loader, accelerator, f"{split or 'test'} faces"), accelerator)
    errors = nme(predicted, true)
    failures = float((errors > LANDMARK_FAILURE_NME).mean())
    metrics = {_key(split, "mse_px2"): landmark_mse_px2(predicted, true), _key(split, "nme"): float(errors.mean()),
               _key(split, f"failure_rate_nme_{LANDMARK_FAILURE_NME:.2f}"): failures,
               _key(split, "faces"): int(len(true))}
    if len(true):
        per_face_mse = ((predicted - true) ** 2).reshape(len(true), -1).mean(1) * (LANDMARK_REPORT_SIZE / 2) ** 2
        metrics.update({**mean_fields(_key(split, "mse_px2"), per_face_mse), **mean_fields(_key(split, "nme"), errors),
                        **proportion_fields(_key(split, f"failure_rate_nme_{LANDMARK_FAILURE_NME:.2f}"),
                                            int((errors > LANDMARK_FAILURE_NME).sum()), len(true))})
    return metrics, {"predicted": predicted, "true": true, "errors": errors}


def landmark_tensors(split_dataset, input_size: int, cache_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images at the model's input size, points in [-1, 1]) of a landmarks dataset split."""
    from dlhub.data.landmarks import to_tensors

    images, points = to_tensors(split_dataset, input_size, cache_dir)
    return images, points / (input_size / 2) - 1


# -- denoiser --------------------------------------------------------------------------------------------------------
def face_tensor(faces: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W) in [0, 1] → (N, 1, size, size) float32 (area-resized when needed)."""
    x = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32))[:, None]
    return x if x.shape[-1] == size else torch.nn.functional.interpolate(x, size=(size, size), mode="area")


def noisy_pairs(clean: torch.Tensor, sigma: float) -> TensorDataset:
    """(clean, noisy) pairs with the fixed evaluation noise of this σ."""
    from dlhub.denoise import add_noise

    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED + int(sigma * 1000))
    return TensorDataset(clean, add_noise(clean, sigma, generator))


@torch.no_grad()
def denoise_batches(model, loader, accelerator) -> dict[str, np.ndarray]:
    """Denoise a loader of (clean, noisy) pairs; gathered over processes, without the padding duplicates."""
    model.eval()
    parts = {"clean": [], "noisy": [], "denoised": []}
    for clean, noisy in loader:
        denoised = model(noisy).clamp(0, 1)
        for key, value in zip(parts, accelerator.gather_for_metrics((clean, noisy, denoised))):
            parts[key].append(value[:, 0].float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def denoiser_test(model, clean: torch.Tensor, accelerator, split: str = "test", sigmas=DENOISE_TEST_SIGMAS,
                  batch_size: int = 64) -> tuple[dict, dict]:
    """(metrics, outputs) of a denoiser on clean faces (N, 1, S, S) in [0, 1]: PSNR (MAX = 1, mean over images) of
    the noisy input and of the denoised output at each σ, and the gain; outputs[σ] holds the clean, noisy and
    denoised images."""
    from dlhub.metrics import psnr

    metrics, outputs = {}, {}
    for sigma in _bar(sigmas, accelerator, f"{split or 'test'} faces, σ"):
        loader = accelerator.prepare(DataLoader(noisy_pairs(clean, sigma), batch_size=batch_size))
        out = denoise_batches(model, loader, accelerator)
        noisy, denoised = psnr(out["noisy"], out["clean"]), psnr(out["denoised"], out["clean"])
        noisy_db, denoised_db = noisy["psnr"], denoised["psnr"]
        metrics.update({_key(split, f"psnr_noisy_{sigma}"): noisy_db,
                        _key(split, f"psnr_denoised_{sigma}"): denoised_db,
                        _key(split, f"psnr_gain_{sigma}"): denoised_db - noisy_db})
        per_image = {"noisy": np.asarray(noisy["psnr_per_image"]), "denoised": np.asarray(denoised["psnr_per_image"])}
        per_image["gain"] = per_image["denoised"] - per_image["noisy"]
        if all(np.all(np.isfinite(v)) for v in per_image.values()):  # the same draws for all three: paired
            for name, values in per_image.items():
                metrics.update(mean_fields(_key(split, f"psnr_{name}_{sigma}"), values))
        outputs[sigma] = out
    return metrics, outputs


# -- commands --------------------------------------------------------------------------------------------------------
@torch.no_grad()
def command_features(model, waves: np.ndarray, batch_size: int = 64, show: bool = True) -> torch.Tensor:
    """Pooled encoder features (N, n_features) of 16 kHz clips (N, window), as the classifier's head reads them."""
    features = [model.features(torch.from_numpy(waves[i:i + batch_size]))
                for i in tqdm(range(0, len(waves), batch_size), desc="encoding clips", disable=not show, leave=False)]
    return torch.cat(features).cpu() if features else torch.empty(0)


def commands_test(model, loader, accelerator, split: str = "test") -> tuple[dict, dict]:
    """(metrics, report) of a command classifier on a loader of (encoder features, label indices into the model's
    labels): accuracy over all the model's labels, errors, mean cross-entropy, per-label accuracy, and the keyword-
    spotting view of `keyword_spotting_report` (ten-word accuracy; the share of `unknown` and `silence` clips rejected,
    for a model that has those labels)."""
    from dlhub.commands import keyword_spotting_report

    names = list(_unwrapped(model, accelerator).labels)
    probs, labels, loss = classify_loader(model, _bar(loader, accelerator, f"{split or 'test'} clips"), accelerator)
    report = classification_report(probs, labels, names)
    spotting = keyword_spotting_report(probs, labels, names)
    metrics = {_key(split, "accuracy"): report["accuracy"], _key(split, "clips"): int(len(labels)),
               **{_key(split, k): v for k, v in spotting.items() if k != "accuracy_all_classes"},
               _key(split, "errors"): report["errors"], _key(split, "loss"): loss,
               "per_word_accuracy": report["per_class_accuracy"]}
    if len(labels):
        metrics.update(proportion_fields(_key(split, "accuracy"), len(labels) - report["errors"], len(labels)))
    for name, n_name in (("command_accuracy", "command_clips"), ("unknown_rejected", "unknown_clips"),
                         ("silence_rejected", "silence_clips")):
        rate, n = metrics.get(_key(split, name)), metrics.get(_key(split, n_name))
        if isinstance(rate, float) and np.isfinite(rate) and n:
            metrics.update(proportion_fields(_key(split, name), round(rate * n), n))
    return metrics, {**report, "probs": probs, "labels": labels}


# -- regression ------------------------------------------------------------------------------------------------------
def regression_test(model, regression, classification, splits=("test",)) -> dict:
    """Task 1 with the shipped `mse` and `accuracy` metrics: the validation MSE of the OLS and the reweighted (IRLS)
    curves on Task 1.1, and the accuracy of both logistic classifiers (constant lr, lr decay) on each of `splits` of
    Task 1.2. `regression` and `classification` are the DatasetDicts of `dlhub.data.task1.load_task1`."""
    from dlhub.data import to_numpy
    from dlhub.metrics import load_metric

    mse_metric, accuracy_metric = load_metric("mse"), load_metric("accuracy")
    val = to_numpy(regression["validation"])
    metrics = {"ols_val_mse": mse_metric.compute(predictions=model.predict_ols(val["x"]), references=val["y"])["mse"],
               "irls_val_mse": mse_metric.compute(predictions=model.predict(val["x"]), references=val["y"])["mse"]}
    reference = np.asarray(val["y"], dtype=np.float64).reshape(-1)
    for name, predict in (("ols_val_mse", model.predict_ols), ("irls_val_mse", model.predict)):
        squared = (np.asarray(predict(val["x"]), dtype=np.float64).reshape(-1) - reference) ** 2  # per point
        metrics.update(mean_fields(name, squared))
    for name, decay in (("logistic", False), ("logistic_decay", True)):
        for split in splits:
            clf = to_numpy(classification[split])
            points = np.stack([clf["x1"], clf["x2"]], 1)
            predicted = np.asarray(model.classify(points, decay=decay)).reshape(-1)
            metrics[f"{name}_{split}_accuracy"] = accuracy_metric.compute(
                predictions=predicted, references=clf["label"])["accuracy"]
            labels = np.asarray(clf["label"]).reshape(-1)
            metrics.update(proportion_fields(f"{name}_{split}_accuracy", int((predicted == labels).sum()), len(labels)))
    return metrics
