"""Speed of the masking collator, per process, against the one it replaced and transformers' own.

On the bundled corpus repeated 10 times (NSP instances, length 128), every training instance is collated once in
batches of 256, in one process, by:

- nsptask's ``PretrainingCollator(masking="exact")`` (vectorised over the batch, counter-based random numbers);
- the per-sequence collator nsptask shipped before (``benchmarks/previous_collator.py``: one numpy generator and one
  Python loop per sequence, then ``tokenizer.pad``): the baseline of the ratio;
- transformers' ``DataCollatorForLanguageModeling`` (Bernoulli masking, ``tokenizer.pad``), for reference.

Each is timed three times after a warm-up batch, and the best time is kept (shared machines are noisy). The share of
masked tokens is printed beside each, so the collators do comparable work. Prints one JSON object and writes it to
``benchmarks/results_collator.json``.

    python benchmarks/bench_collator.py       # about 2 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BATCH = 256
REPEATS = 3


def _corpus_x10(directory: Path) -> Path:
    from nsptask.corpus import iter_documents

    path = directory / "corpus_x10.txt"
    docs = [d["sentences"] for d in iter_documents()]
    with open(path, "w") as f:
        for _ in range(10):
            for sentences in docs:
                f.write("\n".join(sentences) + "\n\n")
    return path


def _time(collator, features) -> tuple[float, float]:
    collator(features[:BATCH])  # warm-up
    best, masked, tokens = float("inf"), 0, 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        masked = tokens = 0
        for i in range(0, len(features), BATCH):
            batch = collator(features[i : i + BATCH])
            masked += int((batch["labels"] != -100).sum())
            tokens += int(batch["attention_mask"].sum())
        best = min(best, time.perf_counter() - start)
    return best, masked / max(tokens, 1)


def main() -> dict:
    from datasets.utils.logging import disable_progress_bar
    from previous_collator import PretrainingCollator as PreviousCollator
    from transformers import DataCollatorForLanguageModeling

    from nsptask import build_pretraining_dataset
    from nsptask.collator import PretrainingCollator
    from nsptask.tokenization import default_tokenizer

    disable_progress_bar()
    tokenizer = default_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = _corpus_x10(Path(tmp))
        data = build_pretraining_dataset(corpus, tokenizer, data_format="nsp", data_cache_dir=f"{tmp}/cache")["train"]
        rows = data.select_columns(["input_ids", "token_type_ids", "next_sentence_label"]).to_list()
    features = [{**row, "instance_index": i} for i, row in enumerate(rows)]
    plain = [{"input_ids": r["input_ids"], "token_type_ids": r["token_type_ids"]} for r in rows]
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    results = {}
    for name, collator, inputs in (
        ("nsptask", PretrainingCollator(tokenizer, masking="exact"), features),
        ("previous_nsptask", PreviousCollator(tokenizer, masking="exact"), features),
        (
            "transformers_DataCollatorForLanguageModeling",
            DataCollatorForLanguageModeling(tokenizer, pad_to_multiple_of=8),
            plain,
        ),
    ):
        seconds, share = _time(collator, inputs)
        results[name] = {
            "seconds": round(seconds, 3),
            "tokens_per_second": round(n_tokens / seconds),
            "masked_share": round(share, 4),
        }
    out = {
        "corpus": "bundled corpus x10, NSP instances, length 128",
        "instances": len(features),
        "tokens": n_tokens,
        "batch_size": BATCH,
        "cpus": os.cpu_count(),
        "collators": results,
        "speedup_vs_previous_nsptask": round(results["previous_nsptask"]["seconds"] / results["nsptask"]["seconds"], 2),
        "speedup_vs_transformers": round(
            results["transformers_DataCollatorForLanguageModeling"]["seconds"] / results["nsptask"]["seconds"], 2
        ),
    }
    return out


if __name__ == "__main__":
    figures = main()
    print(json.dumps(figures, indent=2))
    (HERE / "results_collator.json").write_text(json.dumps(figures, indent=2) + "\n")
