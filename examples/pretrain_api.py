"""Pretrain the same tiny model with each sentence objective through the Python API and compare them.

python examples/pretrain_api.py                      # CPU, a few minutes
accelerate launch examples/pretrain_api.py           # the same script on every GPU of a node
"""

from nsptask import DataArguments, NspTrainingArguments, pretrain

data = DataArguments.from_options(max_seq_length=128)  # the bundled corpus; corpus=["my_corpus.jsonl"] for yours
results = {}
for objective in ("mlm+nsp", "mlm+sop", "mlm"):
    args = NspTrainingArguments(
        output_dir=f"runs/tiny-{objective.replace('+', '-')}",
        objective=objective,
        preset="tiny",
        max_steps=200,
        report_to="none",
        overwrite_output_dir=True,
    )
    results[objective] = pretrain(args, data).metrics

for objective, metrics in results.items():
    shown = {
        k: round(v, 4)
        for k, v in metrics.items()
        if k.startswith("eval_") and "runtime" not in k and "per_second" not in k
    }
    print(objective, shown)
