"""Throughput and memory of building NSP instances, end to end, and how they scale with cores.

Measures, each in a fresh process with an empty ``datasets`` cache (the tokenizer is loaded before):

- nsptask's Arrow build (reading the one-sentence-per-line corpus, tokenizing, pairing, writing Arrow) on the
  bundled corpus and on it repeated 10 times, for the ``hf`` tokenizer backend and the optional ``tokie`` fast
  path, with ``num_proc`` unset (one process, the Rust tokenizer on every core), 1 (one core) and 2 (two
  processes, one core each);
- peak memory of the **whole process tree** (the build and every worker it starts), sampled every 20 ms;
- a hash of every instance (ids and labels, both splits, in order): it must not change with ``num_proc`` or the
  backend;
- the same algorithm written the way the reference implementations are (Google's ``create_pretraining_data.py`` /
  transformers 4's ``TextDatasetForNextSentencePrediction``: per-line tokenization, Python token lists, everything
  in memory): the baseline, run here in the same session;
- the tokenizers library's own batch-encoding time for the corpus's sentences, with its threads and with one: the
  share of the ``hf`` backend's build time that is the library's, which no change to nsptask can shorten;
- peak memory of the streaming build (``pool_order="corpus"``, default pool of 1,000 documents), x1 and x10.

Prints one JSON object with instances/s, tokens/s, the ratios (2 processes vs 1, nsptask vs the baseline, the hf
backend vs the tokenizer's own rate) and the hashes; ``benchmarks/results_build.json`` holds the last run.

    python benchmarks/bench_build.py            # ~4 minutes on 2 cores
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path


def _corpus_x(factor: int, directory: Path) -> Path:
    from nsptask.corpus import iter_documents

    path = directory / f"corpus_x{factor}.txt"
    docs = [d["sentences"] for d in iter_documents()]
    with open(path, "w") as f:
        for _ in range(factor):
            for sentences in docs:
                f.write("\n".join(sentences) + "\n\n")
    return path


def instance_hash(dataset_dict) -> str:
    """SHA-256 of every instance's ids and label, split by split, in order."""
    import pyarrow.compute as pc

    digest = hashlib.sha256()
    for split in sorted(dataset_dict):
        table = dataset_dict[split].data.table if hasattr(dataset_dict[split], "data") else dataset_dict[split]
        digest.update(split.encode())
        digest.update(pc.list_flatten(table.column("input_ids")).to_numpy().tobytes())
        digest.update(pc.list_value_length(table.column("input_ids")).to_numpy().tobytes())
        for label in ("next_sentence_label", "sentence_order_label"):
            if label in table.column_names:
                digest.update(table.column(label).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _build(corpus: str, num_proc, backend: str, streaming: bool, queue) -> None:
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    from nsptask import build_pretraining_dataset
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        kwargs = dict(data_format="nsp", tokenizer=tokenizer, tokenizer_backend=backend, data_cache_dir=cache)
        digest = None
        if streaming:
            data = build_pretraining_dataset(corpus, streaming=True, pool_order="corpus", **kwargs)
            n_instances = n_tokens = 0
            for batch in data["train"].iter(batch_size=1000):
                n_instances += len(batch["input_ids"])
                n_tokens += sum(len(x) for x in batch["input_ids"])
        else:
            data = build_pretraining_dataset(corpus, num_proc=num_proc, **kwargs)
            n_instances = len(data["train"])
            import pyarrow.compute as pc

            n_tokens = int(pc.sum(pc.list_value_length(data["train"].data.column("input_ids"))).as_py())
            digest = instance_hash(data)
        seconds = time.perf_counter() - start
    queue.put({"instances": n_instances, "tokens": n_tokens, "seconds": seconds, "hash": digest})


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
    queue.put({"instances": len(instances), "tokens": n_tokens, "seconds": seconds, "hash": None})


def _tokenizer_rate(corpus: str, single: bool, queue) -> None:
    """The tokenizers library's own rate on the corpus's sentences (batches of 5,000), no nsptask code."""
    if single:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from nsptask.tokenization import default_tokenizer, plain_backend

    backend = plain_backend(default_tokenizer())
    sentences = [line.strip() for line in open(corpus, encoding="utf-8") if line.strip()]
    start = time.perf_counter()
    tokens = 0
    for k in range(0, len(sentences), 5000):
        tokens += sum(len(e.ids) for e in backend.encode_batch_fast(sentences[k : k + 5000], add_special_tokens=False))
    seconds = time.perf_counter() - start
    queue.put({"instances": 0, "tokens": tokens, "seconds": seconds, "hash": None})


def tree_peak_mb(pid: int, stop: threading.Event, out: list) -> None:
    """Peak summed RSS of a process and all its descendants, sampled every 20 ms."""
    import psutil

    peak = 0
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            total = root.memory_info().rss
            for child in root.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        peak = max(peak, total)
        time.sleep(0.02)
    out.append(peak / 2**20)


def _run(target, *args, repeats: int = 2) -> dict:
    """Run in fresh processes `repeats` times; keep the fastest time (the least disturbed by the machine) and the
    largest whole-tree peak memory."""
    ctx = mp.get_context("spawn")
    results = []
    for _ in range(repeats):
        queue = ctx.Queue()
        process = ctx.Process(target=target, args=(*args, queue))
        process.start()
        stop, peaks = threading.Event(), []
        sampler = threading.Thread(target=tree_peak_mb, args=(process.pid, stop, peaks))
        sampler.start()
        result = queue.get()
        stop.set()
        sampler.join()
        process.join()
        result["tree_peak_mb"] = peaks[0] if peaks else float("nan")
        results.append(result)
    result = min(results, key=lambda r: r["seconds"])
    result["tree_peak_mb"] = round(max(r["tree_peak_mb"] for r in results), 1)
    if result["instances"]:
        result["instances_per_s"] = round(result["instances"] / result["seconds"])
    result["tokens_per_s"] = round(result["tokens"] / result["seconds"])
    result["seconds"] = round(result["seconds"], 3)
    return result


def main() -> None:
    from nsptask.tokenization import default_tokenizer

    default_tokenizer()  # loaded once before any timing
    try:
        import tokie  # noqa: F401

        backends = ["hf", "tokie"]
    except ImportError:
        backends = ["hf"]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "runs": {}}
    runs = results["runs"]
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {"x1": str(_corpus_x(1, Path(tmp))), "x10": str(_corpus_x(10, Path(tmp)))}
        for name, corpus in corpora.items():
            runs[f"baseline_{name}"] = _run(_baseline, corpus)
            for backend in backends:
                for num_proc in (None, 1, 2):
                    label = "threads" if num_proc is None else f"np{num_proc}"
                    runs[f"nsptask_{backend}_{name}_{label}"] = _run(_build, corpus, num_proc, backend, False)
            runs[f"nsptask_streaming_{name}"] = _run(_build, corpus, None, "hf", True)
        runs["tokenizers_library_x10_threads"] = _run(_tokenizer_rate, corpora["x10"], False)
        runs["tokenizers_library_x10_1thread"] = _run(_tokenizer_rate, corpora["x10"], True)

    def ratio(a, b, key="instances_per_s"):
        return round(runs[a][key] / runs[b][key], 2)

    ratios = {}
    for backend in backends:
        ratios[f"np2_vs_np1_{backend}_x10"] = ratio(f"nsptask_{backend}_x10_np2", f"nsptask_{backend}_x10_np1")
        ratios[f"np2_vs_threads_{backend}_x10"] = ratio(f"nsptask_{backend}_x10_np2", f"nsptask_{backend}_x10_threads")
        ratios[f"tree_memory_np2_vs_np1_{backend}_x10"] = round(
            runs[f"nsptask_{backend}_x10_np2"]["tree_peak_mb"] / runs[f"nsptask_{backend}_x10_np1"]["tree_peak_mb"], 2
        )
        ratios[f"{backend}_best_vs_baseline_x10"] = round(
            max(runs[f"nsptask_{backend}_x10_{k}"]["instances_per_s"] for k in ("threads", "np1", "np2"))
            / runs["baseline_x10"]["instances_per_s"],
            2,
        )
    # How much of the hf backend's build time the tokenizers library alone needs to encode the same sentences:
    # the part of the build no nsptask change can make faster.
    for label, library in (("threads", "tokenizers_library_x10_threads"), ("np1", "tokenizers_library_x10_1thread")):
        ratios[f"hf_{label}_time_in_tokenizers_library_x10"] = round(
            runs[library]["seconds"] / runs[f"nsptask_hf_x10_{label}"]["seconds"], 2
        )
    ratios["streaming_tree_memory_x10_vs_x1"] = round(
        runs["nsptask_streaming_x10"]["tree_peak_mb"] / runs["nsptask_streaming_x1"]["tree_peak_mb"], 2
    )
    hashes = {k: v["hash"] for k, v in runs.items() if v.get("hash")}
    results["ratios"] = ratios
    results["instance_hashes"] = hashes
    results["instances_identical_across_num_proc_and_backends"] = {
        name: len({h for k, h in hashes.items() if f"_{name}_" in k}) == 1 for name in ("x1", "x10")
    }
    text = json.dumps(results, indent=2)
    print(text)
    (Path(__file__).parent / "results_build.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
