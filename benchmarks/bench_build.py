"""Throughput and memory of building NSP instances, end to end.

Measures, each in a fresh process with an empty ``datasets`` cache (the tokenizer is trained before):

- nsptask's Arrow build (reading the one-sentence-per-line corpus, tokenizing, pairing, writing Arrow)
  on the bundled corpus and on it repeated 10 times, with ``num_proc`` 1 and 2, for the ``hf`` tokenizer
  backend and the optional ``tokie`` fast path;
- the same algorithm written the way the reference implementations are (Google's
  ``create_pretraining_data.py`` / transformers 4's ``TextDatasetForNextSentencePrediction``: per-line
  tokenization, Python token lists, everything in memory): the baseline, run here in the same session;
- peak RSS of the streaming build (iterating the ``IterableDataset``) and of the Arrow build, for the
  corpus and the corpus x10.

Prints one JSON object with instances/s, tokens/s and the ratios (2 processes vs 1; nsptask vs the
baseline; streaming memory at 10x vs 1x). The anchor from REFERENCE.md: Google's reference and
transformers 4 build about 1,500-1,700 NSP instances/s on these machines.

    python benchmarks/bench_build.py            # ~2 minutes on 2 cores
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

SINGLE_THREAD = {"RAYON_NUM_THREADS": "1", "RAYON_RS_NUM_CPUS": "1", "TOKENIZERS_PARALLELISM": "false"}
ANCHOR_INSTANCES_PER_S = 1600  # REFERENCE.md: 1,400-1,700 for Google's and transformers 4's builders


def _corpus_x(factor: int, directory: Path) -> Path:
    from nsptask.corpus import iter_documents

    path = directory / f"corpus_x{factor}.txt"
    docs = [d["sentences"] for d in iter_documents()]
    with open(path, "w") as f:
        for _ in range(factor):
            for sentences in docs:
                f.write("\n".join(sentences) + "\n\n")
    return path


def _build(corpus: str, num_proc: int, backend: str, streaming: bool, env: dict, queue) -> None:
    os.environ.update(env)
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    from nsptask import build_pretraining_dataset
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HF_DATASETS_CACHE"] = cache
        import datasets

        datasets.config.HF_DATASETS_CACHE = Path(cache)
        start = time.perf_counter()
        kwargs = dict(
            format="nsp", tokenizer=tokenizer, tokenizer_backend=backend, validation_fraction=0, cache_dir=cache
        )
        if streaming:
            # A pool of 100 of these long articles (~750k tokens) holds as many tokens as a pool of
            # 1,000 average Wikipedia articles: memory is bounded by the pool, not by the corpus.
            data = build_pretraining_dataset(corpus, streaming=True, pool_size=100, **kwargs)
            n_instances = n_tokens = 0
            for batch in data["train"].iter(batch_size=1000):
                n_instances += len(batch["input_ids"])
                n_tokens += sum(len(x) for x in batch["input_ids"])
        else:
            data = build_pretraining_dataset(corpus, num_proc=num_proc, **kwargs)
            n_instances = len(data["train"])
            import pyarrow.compute as pc

            n_tokens = int(pc.sum(pc.list_value_length(data["train"].data.column("input_ids"))).as_py())
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"instances": n_instances, "tokens": n_tokens, "seconds": seconds, "peak_rss_mb": peak_mb})


def _baseline(corpus: str, queue) -> None:
    """The reference implementations' shape: per-line tokenization into Python lists, all in memory,
    Google's create_instances_from_document on token lists, one global random generator."""
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    start = time.perf_counter()
    documents: list[list[list[int]]] = [[]]
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                documents.append([])
                continue
            tokens = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line))
            if tokens:
                documents[-1].append(tokens)
    documents = [d for d in documents if d]
    rng = random.Random(12345)
    instances = []
    max_num_tokens = 125
    for index, document in enumerate(documents):
        target = max_num_tokens if rng.random() >= 0.1 else rng.randint(2, max_num_tokens)
        chunk, length, i = [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                a = [t for s in chunk[:a_end] for t in s]
                if len(chunk) == 1 or rng.random() < 0.5:
                    label = 1
                    other = index
                    for _ in range(10):
                        other = rng.randint(0, len(documents) - 1)
                        if other != index:
                            break
                    b = []
                    for sentence in documents[other][rng.randint(0, len(documents[other]) - 1) :]:
                        b.extend(sentence)
                        if len(b) >= target - len(a):
                            break
                    i -= len(chunk) - a_end
                else:
                    label = 0
                    b = [t for s in chunk[a_end:] for t in s]
                while len(a) + len(b) > max_num_tokens:
                    trunc = a if len(a) > len(b) else b
                    del trunc[0 if rng.random() < 0.5 else -1]
                ids = [tokenizer.cls_token_id, *a, tokenizer.sep_token_id, *b, tokenizer.sep_token_id]
                instances.append(
                    {
                        "input_ids": ids,
                        "token_type_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1),
                        "next_sentence_label": label,
                    }
                )
                chunk, length = [], 0
            i += 1
    seconds = time.perf_counter() - start
    n_tokens = sum(len(x["input_ids"]) for x in instances)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"instances": len(instances), "tokens": n_tokens, "seconds": seconds, "peak_rss_mb": peak_mb})


def _run(target, *args, repeats: int = 2) -> dict:
    """Run in fresh processes `repeats` times and keep the fastest (the least disturbed by the machine)."""
    ctx = mp.get_context("spawn")
    results = []
    for _ in range(repeats):
        queue = ctx.Queue()
        process = ctx.Process(target=target, args=(*args, queue))
        process.start()
        results.append(queue.get())
        process.join()
    result = min(results, key=lambda r: r["seconds"])
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    result["instances_per_s"] = round(result["instances"] / result["seconds"])
    result["tokens_per_s"] = round(result["tokens"] / result["seconds"])
    result["seconds"] = round(result["seconds"], 3)
    result["peak_rss_mb"] = round(result["peak_rss_mb"], 1)
    return result


def main() -> None:
    from nsptask.tokenization import default_tokenizer

    default_tokenizer()  # trained and cached before any timing
    have_tokie = True
    try:
        import tokie  # noqa: F401
    except ImportError:
        have_tokie = False
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {"x1": str(_corpus_x(1, Path(tmp))), "x10": str(_corpus_x(10, Path(tmp)))}
        for name, corpus in corpora.items():
            results["runs"][f"baseline_{name}"] = _run(_baseline, corpus)
            for backend in ["hf"] + (["tokie"] if have_tokie else []):
                for num_proc in (1, 2):
                    results["runs"][f"nsptask_{backend}_{name}_np{num_proc}"] = _run(
                        _build, corpus, num_proc, backend, False, {}
                    )
            # Process scaling alone: the Rust tokenizers use every core by themselves, so with them
            # multi-threaded num_proc=1 already uses both cores for tokenizing. Pin them to one thread.
            for num_proc in (1, 2):
                results["runs"][f"nsptask_hf_1thread_{name}_np{num_proc}"] = _run(
                    _build, corpus, num_proc, "hf", False, SINGLE_THREAD
                )
            results["runs"][f"nsptask_streaming_{name}"] = _run(_build, corpus, 1, "hf", True, {})
    runs = results["runs"]
    best = "tokie" if have_tokie else "hf"
    results["ratios"] = {
        "np2_vs_np1_hf_1thread_x10": round(
            runs["nsptask_hf_1thread_x10_np2"]["instances_per_s"]
            / runs["nsptask_hf_1thread_x10_np1"]["instances_per_s"],
            2,
        ),
        "np2_vs_np1_hf_x10": round(
            runs["nsptask_hf_x10_np2"]["instances_per_s"] / runs["nsptask_hf_x10_np1"]["instances_per_s"], 2
        ),
        f"np2_vs_np1_{best}_x10": round(
            runs[f"nsptask_{best}_x10_np2"]["instances_per_s"] / runs[f"nsptask_{best}_x10_np1"]["instances_per_s"], 2
        ),
        "hf_np2_vs_baseline_x10": round(
            runs["nsptask_hf_x10_np2"]["instances_per_s"] / runs["baseline_x10"]["instances_per_s"], 2
        ),
        f"{best}_np2_vs_baseline_x10": round(
            runs[f"nsptask_{best}_x10_np2"]["instances_per_s"] / runs["baseline_x10"]["instances_per_s"], 2
        ),
        f"{best}_np2_vs_published_anchor_x10": round(
            runs[f"nsptask_{best}_x10_np2"]["instances_per_s"] / ANCHOR_INSTANCES_PER_S, 2
        ),
        "streaming_rss_x10_vs_x1": round(
            runs["nsptask_streaming_x10"]["peak_rss_mb"] / runs["nsptask_streaming_x1"]["peak_rss_mb"], 3
        ),
        "arrow_rss_x10_vs_x1": round(
            runs["nsptask_hf_x10_np1"]["peak_rss_mb"] / runs["nsptask_hf_x1_np1"]["peak_rss_mb"], 3
        ),
        "baseline_rss_x10_vs_x1": round(runs["baseline_x10"]["peak_rss_mb"] / runs["baseline_x1"]["peak_rss_mb"], 3),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
