"""How sure a measured figure is: 95% intervals, written once and used by the evaluation helpers, the model cards, the
README table and the Space's tab headers.

    from dlhub.metrics.intervals import wilson_interval, bootstrap_interval, estimate
    wilson_interval(1297, 1325)                      # (0.971…, 0.985…): a proportion (accuracy, rejection rate)
    bootstrap_interval(per_face_nme)                 # a mean of per-item values (NME, PSNR): percentile bootstrap
    estimate(metrics, "test_accuracy", n_key="test_images").text()  # "0.9957 (95% CI 0.9944–0.9967, n = 12,630)"

A metrics.json records an interval beside its figure as `<metric>_ci95: [low, high]` and `<metric>_n` (the number of
items the figure is over); `interval_fields` makes those two entries. A proportion whose item count is recorded
(`test_images`, `test_clips`, …) needs nothing more: `estimate` computes its Wilson interval from the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal
RESAMPLES, SEED = 2000, 0
WILSON = "Wilson score"
BOOTSTRAP = f"percentile bootstrap ({RESAMPLES:,} resamples, seed {SEED})"
CI_SUFFIX, N_SUFFIX = "_ci95", "_n"


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion of k successes in n trials (z = 1.96: 95%)."""
    if n <= 0:
        raise ValueError("a proportion of 0 items has no interval")
    if not 0 <= k <= n:
        raise ValueError(f"{k} successes in {n} trials")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values, statistic=np.mean, resamples: int = RESAMPLES, seed: int = SEED,
                       level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of `statistic` over per-item `values` (resampled with replacement; a fixed
    seed, so the same values give the same interval). Two lists of the same items resampled with the same seed and
    count use the same draws (paired)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("bootstrap_interval needs a non-empty 1-D array of per-item values")
    if not np.all(np.isfinite(values)):
        raise ValueError("bootstrap_interval: the per-item values must be finite")
    draws = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    try:  # numpy's reductions take the resamples (rows) at once
        stats = np.asarray(statistic(values[draws], axis=1), dtype=np.float64)
    except TypeError:  # a statistic of one 1-D array
        stats = np.array([statistic(row) for row in values[draws]], dtype=np.float64)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def interval_fields(name: str, interval: tuple[float, float], n: int) -> dict:
    """{"<name>_ci95": [low, high], "<name>_n": n}: what a metrics.json records beside the figure `name`."""
    return {name + CI_SUFFIX: [float(interval[0]), float(interval[1])], name + N_SUFFIX: int(n)}


def proportion_fields(name: str, k: int, n: int) -> dict:
    """interval_fields of a proportion of k in n (Wilson)."""
    return interval_fields(name, wilson_interval(int(k), int(n)), n)


def mean_fields(name: str, values) -> dict:
    """interval_fields of the mean of per-item values (percentile bootstrap)."""
    return interval_fields(name, bootstrap_interval(values), len(values))


def count_of(rate: float, n: int) -> int:
    """The number of items behind a recorded proportion (rate · n, which must be a whole number to 1e-6)."""
    k = round(rate * n)
    if abs(rate * n - k) > 1e-6 * max(1, n):
        raise ValueError(f"{rate} of {n} items is not a whole number of items")
    return int(k)


def auto_digits(value: float) -> int:
    """Decimals that show a figure to at least 3 significant digits: 4 below 10 (0.9957, 0.0451), more for small
    figures (0.00249), 2 from 10 (25.87)."""
    if abs(value) >= 10:
        return 2
    if value == 0 or not math.isfinite(value):
        return 4
    return max(4, 2 - math.floor(math.log10(abs(value))))


def _number(value: float, digits: int | None) -> str:
    return f"{value:.{auto_digits(value) if digits is None else digits}f}"


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval and the number of items it is over."""

    value: float
    low: float
    high: float
    n: int
    method: str  # WILSON or BOOTSTRAP (or how a recorded interval was made)

    def interval_text(self, digits: int | None = None) -> str:
        """"95% CI 0.971–0.985, n = 1,325"."""
        digits = auto_digits(self.value) if digits is None else digits
        return f"95% CI {_number(self.low, digits)}–{_number(self.high, digits)}, n = {self.n:,}"

    def text(self, digits: int | None = None, unit: str = "") -> str:
        """"0.979 (95% CI 0.971–0.985, n = 1,325)"; `unit` follows the value (" dB")."""
        return f"{_number(self.value, digits)}{unit} ({self.interval_text(digits)})"

    def args(self) -> dict:
        """The interval as a model-index metric's `args`."""
        return {"ci95": [round(self.low, 6), round(self.high, 6)], "n": self.n, "interval": self.method}


def estimate(metrics: dict, key: str, n_key: str | None = None, mean: bool = False) -> Estimate | None:
    """The figure `key` of a metrics dict with its interval: the recorded `<key>_ci95` and `<key>_n` when present
    (made by BOOTSTRAP for a `mean` of per-item values, else by WILSON); else, for a proportion whose item count is
    recorded under `n_key`, its Wilson interval. None when neither is there (or the figure itself is missing)."""
    value = metrics.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    ci, n = metrics.get(key + CI_SUFFIX), metrics.get(key + N_SUFFIX)
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and isinstance(n, int) and n > 0:
        return Estimate(float(value), float(ci[0]), float(ci[1]), n, BOOTSTRAP if mean else WILSON)
    total = metrics.get(n_key) if n_key else None
    if not mean and isinstance(total, (int, float)) and not isinstance(total, bool) and total > 0 and 0 <= value <= 1:
        total = int(total)
        try:
            successes = count_of(value, total)
        except ValueError:
            return None
        low, high = wilson_interval(successes, total)
        return Estimate(float(value), low, high, total, WILSON)
    return None


# The cross-validation's recordings (dlhub.commands.recordings_report): one recording as a user makes it of each clip,
# answered as the voice tab answers it by the head of the fold that held out its speaker and its noise clip
RECORDING_ESTIMATES = (("recording_command_accuracy", "recording_command_clips"),
                       ("recording_unknown_right", "recording_unknown_clips"),
                       ("recording_silence_right", "recording_silence_clips"))


def command_estimates(metrics: dict) -> tuple[dict[str, Estimate], str]:
    """The voice-commands headline: ({"command_accuracy" | "unknown_rejected" | "silence_rejected": Estimate, and
    for the cross-validation's recordings where it made them "recording_command_accuracy" | "recording_unknown_right"
    | "recording_silence_right"}, where it was measured, in words: "in speaker-grouped 5-fold cross-validation over
    40 speakers"). From the speaker-grouped cross-validation over the training and validation speakers
    (`cross_validation` in metrics.json, as dlhub.commands.cross_validate writes it) when the run recorded one, the
    test split being small; else from the test split."""
    cv = metrics.get("cross_validation")
    if isinstance(cv, dict) and cv.get("command_clips"):
        source, prefix = cv, ""
        where = (f"in speaker-grouped {cv.get('folds', '?')}-fold cross-validation over {cv.get('speakers', '?')} "
                 "speakers")
    else:
        source, prefix = metrics, "test_"
        speakers = metrics.get("test_speakers")
        where = f"on {speakers} speakers it never heard" if speakers else "on the test split"
    out = {}
    for name, n_key in (("command_accuracy", "command_clips"), ("unknown_rejected", "unknown_clips"),
                        ("silence_rejected", "silence_clips")) + RECORDING_ESTIMATES * (source is cv):
        found = estimate(source, prefix + name, prefix + n_key)
        if found is not None:
            out[name] = found
    return out, where
