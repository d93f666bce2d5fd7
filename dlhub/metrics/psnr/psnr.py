"""Peak signal-to-noise ratio per image, 10·log10(MAX² / MSE), averaged over images."""

import datasets
import evaluate
import numpy as np


class PSNR(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="PSNR in dB of each image against its reference (MAX = data_range), then the mean.",
            citation="",
            inputs_description=(
                "predictions, references: one flattened image (list of floats in [0, data_range]) per item, "
                "each prediction the same length as its reference; data_range: MAX, default 1.0"
            ),
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")),
                 "references": datasets.Sequence(datasets.Value("float32"))}
            ),
        )

    def _compute(self, predictions, references, data_range=1.0):
        if len(predictions) == 0:
            raise ValueError("PSNR of an empty set is undefined")
        values = []
        for pred, ref in zip(predictions, references):
            pred, ref = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
            if pred.shape != ref.shape:
                raise ValueError(f"prediction has {pred.size} values, its reference {ref.size}")
            mse = np.mean((pred - ref) ** 2)
            values.append(float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse)))
        return {"psnr": float(np.mean(values)), "psnr_per_image": values}
