"""seqeval as an ``evaluate`` module that ships inside nsptask, so it loads offline.

``evaluate.load("seqeval")`` fetches its script from the Hugging Face Hub (evaluate #257, #473); nsptask loads this
one from its own folder instead (:func:`nsptask.metrics.load_metric`). It computes entity-level scores with the
seqeval library: micro and macro precision, recall and F1, per-type scores, token accuracy and the text report.
"""

import datasets
import evaluate


class Seqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Entity-level precision, recall and F1 of IOB2 tag sequences (seqeval).",
            citation="Hiroki Nakayama, seqeval: A Python framework for sequence labeling evaluation, 2018.",
            inputs_description="predictions and references: lists of tag sequences (one list of tags per sentence).",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, mode=None):
        from nsptask.token_classification import seqeval_scores

        return seqeval_scores(references, predictions, mode)
