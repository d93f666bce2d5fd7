"""Peak signal-to-noise ratio per image, 10·log10(MAX² / MSE), averaged over images."""

import datasets
import evaluate

from dlhub.metrics import psnr


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
        return psnr(predictions, references, data_range)  # the one implementation, also used without evaluate
