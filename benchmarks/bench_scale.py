"""Scale-out of the data build: a Wikipedia-style multistream dump read by 1 and 2 processes, and the Dask engine
against the single-machine build on the same input.

The dump is made here from the bundled corpus (103 articles, repeated 1x and 10x, as wikitext with a template, a
heading, links and references per article) in Wikipedia's ``pages-articles-multistream`` layout: bz2 streams of 100
pages and the ``-index.txt.bz2`` beside it, which is what lets several processes read one dump. Reading means
parsing the XML and stripping the markup with mwparserfromhell, then splitting sentences and tokenizing.

Measured, each build in a fresh process with an empty cache:

- x10 dump, ``num_proc`` 1 vs 2: wall time ratio and whole-tree peak memory;
- x10 dump, the Dask engine on a local cluster of 2 single-threaded workers vs the single-machine build with
  ``num_proc=2``: the same instances (hash of every id and label, both splits, in order), wall-time ratio, and
  peak memory per worker (the largest RSS any worker process reached);
- the Dask engine on the x10 and x100 dumps (bounded shards and buckets: ``max_shard_bytes`` 256 KB,
  ``pool_size`` 100, ``max_pools_per_bucket`` 2, the same in every run): peak memory per worker must stay flat
  (x100 / x10 <= 1.2); also shown, each worker's growth over its RSS after start-up and imports.

Every build here uses ``pool_size=100`` and 20 pages per bz2 stream, so that even the small dumps are cut into
several shards, pools and buckets. The figures are written to ``benchmarks/results_scale.json``.

    python benchmarks/bench_scale.py            # ~12 minutes on 2 cores
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_build import instance_hash, tree_peak_mb  # noqa: E402

POOL_SIZE = 100
DASK_LIMITS = {"max_shard_bytes": 256 << 10, "max_pools_per_bucket": 2}


def _warm_worker() -> float:
    """Import what a build task imports; the worker's RSS afterwards (MB)."""
    import psutil

    import nsptask.builder  # noqa: F401
    import nsptask.engine  # noqa: F401
    import nsptask.wikipedia  # noqa: F401

    return psutil.Process().memory_info().rss / 2**20


def wikitext(title: str, sentences: list[str]) -> str:
    """An article's sentences as wikitext: an infobox, paragraphs of four sentences with a link and a reference,
    a heading, and the trailing sections the reader drops."""
    paragraphs = []
    for k in range(0, len(sentences), 4):
        chunk = list(sentences[k : k + 4])
        words = chunk[0].split(" ")
        if len(words) > 3:
            words[2] = f"[[{words[2]}]]"
        chunk[0] = " ".join(words)
        paragraphs.append(" ".join(chunk) + "<ref>A source, p. 1.</ref>")
        if k == 8:
            paragraphs.append("== History ==")
    return "{{Infobox thing|name=" + title + "}}\n" + "\n\n".join(paragraphs) + "\n\n== References ==\n{{reflist}}\n"


def make_dump(factor: int, directory: Path) -> str:
    from nsptask.corpus import iter_documents
    from nsptask.wikipedia import write_multistream_dump

    docs = [d["sentences"] for d in iter_documents()]
    pages = [(f"Article {r}-{i}", wikitext(f"Article {r}-{i}", s)) for r in range(factor) for i, s in enumerate(docs)]
    dump, _ = write_multistream_dump(pages, directory / f"wiki{factor}-multistream.xml.bz2", pages_per_stream=20)
    return dump


def _single(dump: str, num_proc: int, queue) -> None:
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    from nsptask import build_pretraining_dataset
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        data = build_pretraining_dataset(
            dump, data_format="nsp", tokenizer=tokenizer, num_proc=num_proc, data_cache_dir=cache, pool_size=POOL_SIZE
        )
        seconds = time.perf_counter() - start
        queue.put({"seconds": seconds, "instances": sum(len(d) for d in data.values()), "hash": instance_hash(data)})


def _dask(dump: str, workers: int, queue) -> None:
    from distributed import Client, LocalCluster

    from nsptask.arguments import DataArguments
    from nsptask.engine import build_with_dask
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    with tempfile.TemporaryDirectory() as out:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        worker_pids = list(client.run(os.getpid).values())
        idle = max(client.run(_warm_worker).values())
        stop, peaks = threading.Event(), {}

        def sample():
            import psutil

            while not stop.is_set():
                for pid in worker_pids:
                    try:
                        peaks[pid] = max(peaks.get(pid, 0), psutil.Process(pid).memory_info().rss / 2**20)
                    except psutil.Error:
                        pass
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        build_with_dask(
            DataArguments.from_options(corpus=[dump], pool_size=POOL_SIZE),
            out,
            tokenizer,
            data_format="nsp",
            client=client,
            **DASK_LIMITS,
        )
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        client.close()
        cluster.close()
        import datasets

        files = {s: sorted(str(p) for p in Path(out, s).glob("*.parquet")) for s in ("train", "validation")}
        data = datasets.load_dataset("parquet", data_files=files)
        queue.put(
            {
                "seconds": seconds,
                "instances": sum(len(d) for d in data.values()),
                "hash": instance_hash(data),
                "peak_mb_per_worker": round(max(peaks.values()), 1),
                "worker_mb_after_imports": round(idle, 1),
                "peak_growth_mb_per_worker": round(max(peaks.values()) - idle, 1),
            }
        )


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
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
    result["tree_peak_mb"] = round(peaks[0], 1) if peaks else None
    result["seconds"] = round(result["seconds"], 2)
    return result


def main() -> None:
    from nsptask.tokenization import default_tokenizer

    default_tokenizer()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "runs": {}}
    runs = results["runs"]
    with tempfile.TemporaryDirectory() as tmp:
        dumps = {"x1": make_dump(1, Path(tmp)), "x10": make_dump(10, Path(tmp)), "x100": make_dump(100, Path(tmp))}
        results["dump_bytes"] = {k: os.path.getsize(v) for k, v in dumps.items()}
        runs["single_x10_np1"] = _run(_single, dumps["x10"], 1)
        runs["single_x10_np2"] = _run(_single, dumps["x10"], 2)
        runs["dask_x10_2workers"] = _run(_dask, dumps["x10"], 2)
        runs["dask_x100_2workers"] = _run(_dask, dumps["x100"], 2)
    results["ratios"] = {
        "wikipedia_np2_vs_np1_speed": round(runs["single_x10_np1"]["seconds"] / runs["single_x10_np2"]["seconds"], 2),
        "dask_2workers_vs_single_np2_speed": round(
            runs["single_x10_np2"]["seconds"] / runs["dask_x10_2workers"]["seconds"], 2
        ),
        "dask_worker_memory_x100_vs_x10": round(
            runs["dask_x100_2workers"]["peak_mb_per_worker"] / runs["dask_x10_2workers"]["peak_mb_per_worker"], 2
        ),
    }
    results["same_instances"] = {
        "np1_vs_np2": runs["single_x10_np1"]["hash"] == runs["single_x10_np2"]["hash"],
        "dask_vs_single": runs["dask_x10_2workers"]["hash"] == runs["single_x10_np2"]["hash"],
    }
    results["dask_worker_memory_flat"] = results["ratios"]["dask_worker_memory_x100_vs_x10"] <= 1.2
    text = json.dumps(results, indent=2)
    print(text)
    (Path(__file__).parent / "results_scale.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
