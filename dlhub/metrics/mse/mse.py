"""Mean squared error between float predictions and references."""

import datasets
import evaluate


class MSE(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Mean of (prediction - reference)^2.",
            citation="",
            inputs_description="predictions, references: lists of floats of equal length",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        if len(predictions) == 0:
            raise ValueError("MSE of an empty set is undefined")
        return {"mse": sum((p - r) ** 2 for p, r in zip(predictions, references)) / len(predictions)}
