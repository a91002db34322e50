"""Classification scores as an ``evaluate`` module that ships inside nsptask, so it loads offline: accuracy, macro
F1, binary F1 and Matthews correlation (scikit-learn), the majority-class accuracy and the number of examples."""

import datasets
import evaluate
import numpy as np


class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Accuracy, F1 and Matthews correlation, with the majority-class accuracy.",
            citation="",
            inputs_description="predictions and references: class ids.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels=2):
        from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

        predictions, references = np.asarray(predictions), np.asarray(references)
        out = {
            "accuracy": float(accuracy_score(references, predictions)),
            "f1_macro": float(f1_score(references, predictions, average="macro", zero_division=0)),
        }
        if num_labels == 2:
            out["f1"] = float(f1_score(references, predictions, zero_division=0))
            out["matthews_correlation"] = float(matthews_corrcoef(references, predictions))
        counts = np.bincount(references, minlength=num_labels)
        out["majority_baseline"] = float(counts.max() / max(len(references), 1))
        out["examples"] = int(len(references))
        return out
