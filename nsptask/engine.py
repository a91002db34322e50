"""Building pretraining data on a Dask cluster: Wikipedia-scale corpora over many machines.

The single-machine build (:class:`nsptask.PretrainingDataBuilder`) spreads work over the cores of one machine.
:func:`build_with_dask` runs the same functions as tasks of a `Dask distributed <https://distributed.dask.org>`_
cluster (the engine NVIDIA's LDDL uses for BERT data), in three map stages with a shuffle between them:

1. **tokenize**: every input shard (a byte range of a text file, Parquet row groups, a range of bz2 streams of a
   multistream Wikipedia dump; :func:`nsptask.corpus.plan_shards`) is read, split into sentences and tokenized by
   one task, which writes its documents to a Parquet file and returns their 64-bit keys;
2. **assign** (on the client, from the keys alone: 8 bytes per document): the document split, the seeded global
   shuffle and the pools, exactly as the single-machine build computes them; then each tokenized shard is cut into
   *buckets* (contiguous ranges of pools);
3. **create**: each bucket's documents are read, ordered, cut into pools and work units, and turned into instances
   by the same code as the single-machine build, written as ``OUTPUT/SPLIT/part-NNNNN.parquet``.

The output holds the same instances, in the same order, as the single-machine build with the same options (a test
checks it on a 2-worker cluster), so ``datasets.load_dataset("parquet", ...)`` and ``nsptask pretrain --dataset
OUTPUT`` read it. A worker holds one input shard (at most ``max_shard_bytes`` of input, tokenized and written batch
by batch) or one bucket (at most ``max_pools_per_bucket`` pools) at a time, so its memory does not grow with the
corpus (``benchmarks/bench_scale.py`` measures x1 vs x10); the client holds 8 bytes of key per document. The
unknown-token check of the single-machine build runs on the counts of all shards before stage 2. The output folder must be on a file system every worker sees (NFS, Lustre, a shared disk).

Example:
    ```bash
    dask scheduler &                                  # or SLURM / Kubernetes, see docs/data.md
    dask worker tcp://HOST:8786 --nworkers 16 --nthreads 1 &
    nsptask build --engine dask --scheduler tcp://HOST:8786 --corpus enwiki-multistream.xml.bz2 --output_dir /shared/nsp
    ```
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .builder import (
    BUILD_RECORD_FILE,
    PRETRAINING_DOCUMENTS_FILE,
    PretrainingConfig,
    TokenizedCorpusConfig,
    _pool_bounds,
    group_from_table,
    instance_features,
    instances_table,
    pretraining_builder,
    tokenized_features,
    tokenized_shard_tables,
)
from .corpus import plan_shards
from .preprocessing import order_keys, validation_flags
from .stats import check_unknown_counts
from .tokenization import reset_backend_choice

# dask.distributed is the optional `dask` extra: imported by build_with_dask only.

__all__ = ["build_with_dask", "instance_schema"]

logger = logging.getLogger(__name__)

MAX_SHARD_BYTES = 32 << 20


def instance_schema(data_format: str):
    """The Arrow schema of a format's instances, with the ``datasets`` features in its metadata (so ``ClassLabel``
    names come back when the Parquet files are loaded)."""
    features = instance_features(data_format)
    return features.arrow_schema.with_metadata({"huggingface": json.dumps({"info": {"features": features.to_dict()}})})


def _tokenize_shard(shard, work: str, tokenizer, cfg: TokenizedCorpusConfig) -> dict:
    """Stage 1: read, split and tokenize one input shard into ``work/tokenized/shard-NNNNN.parquet``, written
    batch by batch (the worker holds one batch of tokenized documents, not the shard)."""
    reset_backend_choice(tokenizer)  # a worker lives on between builds: each shard checks tokie on its own start
    schema = tokenized_features().arrow_schema
    path = Path(work, "tokenized", f"shard-{shard.index:05d}.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    keys, usable, hashes, rows, unk = [], [], [], 0, [0, 0]
    with pq.ParquetWriter(path, schema) as writer:
        for table in tokenized_shard_tables([shard], cfg, tokenizer, single_thread=True):
            table = table.cast(schema)
            writer.write_table(table)
            keys.append(table["doc_key"].to_numpy())
            usable.append(pc.greater(pc.list_value_length(table["sentence_lengths"]), 0).to_numpy(zero_copy_only=False))
            hashes.append(table["text_hash"].to_numpy())
            rows += table.num_rows
            unk[0] += int(pc.sum(table["unk_tokens"]).as_py() or 0)
            unk[1] += int(pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0)

    def joined(parts, dtype):
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    return {
        "index": shard.index,
        "path": str(path),
        "keys": joined(keys, np.uint64),
        "usable": joined(usable, bool),
        "text_hash": joined(hashes, np.uint64),
        "rows": rows,
        "unk_tokens": unk[0],
        "tokens": unk[1],
    }


def _partition_shard(info: dict, assignment: dict, work: str) -> list[str]:
    """Stage 2: write the shard's documents of each bucket to ``work/buckets/SPLIT/bNNNNN/sNNNNN.parquet``."""
    table = pq.read_table(info["path"])
    written = []
    for split, (rows, ranks, buckets) in assignment.items():
        if len(rows) == 0:
            continue
        part = table.take(pa.array(rows)).append_column("rank", pa.array(ranks, pa.int64()))
        for bucket in np.unique(buckets):
            mask = buckets == bucket
            path = Path(work, "buckets", split, f"b{bucket:05d}", f"s{info['index']:05d}.parquet")
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part.filter(pa.array(mask)), path)
            written.append(str(path))
    return written


def _build_bucket(
    split: str, bucket: int, pools: list[tuple[int, int]], work: str, output: str, tokenizer, config: PretrainingConfig
) -> dict:
    """Stage 3: a bucket's documents in pooled order, cut into pools and units, turned into instances."""
    files = sorted(Path(work, "buckets", split, f"b{bucket:05d}").glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
    tables = []
    if table is not None and table.num_rows:
        table = table.take(pc.sort_indices(table["rank"]))
        ranks = table["rank"].to_numpy()
        first = int(ranks[0])
        for g_start, g_end in pools:
            group = group_from_table(table.slice(g_start - first, g_end - g_start), first_index=g_start)
            for u_start in range(g_start, g_end, config.pools.unit_size):
                u_end = min(u_start + config.pools.unit_size, g_end)
                tables.append(instances_table(group, range(u_start - g_start, u_end - g_start), config, tokenizer))
    schema = instance_schema(config.data_format)
    out = pa.concat_tables(tables).cast(schema) if tables else schema.empty_table()
    path = Path(output, split, f"part-{bucket:05d}.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, path)
    return {"split": split, "bucket": bucket, "instances": out.num_rows, "path": str(path)}


def _assign(
    infos: list[dict], config: PretrainingConfig, buckets_per_split: int, max_pools_per_bucket: int = 4
) -> tuple[dict, dict]:
    """The split, pooled order and bucket of every usable document, from the keys alone (on the client)."""
    split, pools_options = config.split, config.pools
    keys = np.concatenate([i["keys"] for i in infos]) if infos else np.zeros(0, np.uint64)
    usable = np.concatenate([i["usable"] for i in infos]) if infos else np.zeros(0, bool)
    shard_of = np.concatenate([np.full(i["rows"], n) for n, i in enumerate(infos)]) if infos else np.zeros(0, int)
    local = np.concatenate([np.arange(i["rows"]) for i in infos]) if infos else np.zeros(0, int)
    rows = np.flatnonzero(usable)
    unique, counts = np.unique(keys[rows], return_counts=True)
    if len(unique) < len(rows):
        raise ValueError(
            f"A document id is used by {int(counts.max())} documents: expected every document id once. With "
            "doc_id_column, rows sharing an id must be consecutive (they form one document)."
        )
    flags = validation_flags(keys[rows], split.validation_fraction, split.split_seed)
    per_shard: dict[int, dict] = {n: {} for n in range(len(infos))}
    plan: dict[str, list] = {}
    for name, wanted in (("train", False), ("validation", True)):
        if name == "validation" and split.validation_fraction <= 0:
            continue
        mine = rows[flags == wanted]
        if pools_options.pool_order == "shuffled":
            mine = mine[np.argsort(order_keys(keys[mine], config.instances.instance_seed), kind="stable")]
        pools = [
            (start, end)
            for number, (start, end) in enumerate(_pool_bounds(len(mine), pools_options.pool_size))
            if number % pools_options.num_shards == pools_options.shard_index
        ]
        # At least `buckets_per_split` buckets (load balance) and at most `max_pools_per_bucket` pools in one
        # (memory per worker: a bucket's documents are held together).
        n_buckets = max(1, min(len(pools), buckets_per_split), -(-len(pools) // max(1, max_pools_per_bucket)))
        per_bucket = -(-len(pools) // n_buckets) if pools else 1
        bucket_pools = [pools[b : b + per_bucket] for b in range(0, len(pools), per_bucket)]
        plan[name] = bucket_pools
        rank = np.full(len(keys), -1, dtype=np.int64)
        rank[mine] = np.arange(len(mine))
        bucket_of = np.full(len(keys), -1, dtype=np.int64)
        for b, group in enumerate(bucket_pools):
            for start, end in group:
                bucket_of[mine[start:end]] = b
        chosen = np.flatnonzero(bucket_of >= 0)
        for n in range(len(infos)):
            here = chosen[shard_of[chosen] == n]
            per_shard[n][name] = (local[here], rank[here], bucket_of[here])
    return per_shard, plan


def _run_stages(client, config: PretrainingConfig, tokenizer, out: Path, shards_per_worker, max_shard_bytes, max_pools):
    """The three stages on the cluster: tokenize the input shards, cut them into buckets, build each bucket."""
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    work = out / "_work"
    if work.exists():
        shutil.rmtree(work)
    shards, ignored = plan_shards(
        config.source, workers * shards_per_worker, config.reader, max_shard_bytes=max_shard_bytes
    )
    tokenized = TokenizedCorpusConfig(
        name="tokenized",
        reader=config.reader,
        tokenizer_backend=config.tokenizer_backend,
        max_sentence_tokens=config.max_sentence_tokens(tokenizer),
    )
    remote = replace(config, tokenizer=None)  # the tokenizer travels once, scattered to every worker
    tok = client.scatter(tokenizer, broadcast=True)
    infos = client.gather(client.map(_tokenize_shard, shards, work=str(work), tokenizer=tok, cfg=tokenized, pure=False))
    infos.sort(key=lambda i: i["index"])
    check_unknown_counts(sum(i["unk_tokens"] for i in infos), sum(i["tokens"] for i in infos), config)
    assignment, plan = _assign(infos, config, buckets_per_split=2 * workers, max_pools_per_bucket=max_pools)
    client.gather(
        client.map(_partition_shard, infos, [assignment[n] for n in range(len(infos))], work=str(work), pure=False)
    )
    futures = [
        client.submit(_build_bucket, split, b, pools, str(work), str(out), tok, remote, pure=False)
        for split, buckets in plan.items()
        for b, pools in enumerate(buckets)
    ]
    return workers, infos, shards, ignored, assignment, plan, client.gather(futures)


def build_with_dask(
    data_args,
    output_dir: str,
    tokenizer,
    *,
    data_format: str | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    client: Any = None,
    shards_per_worker: int = 4,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    max_pools_per_bucket: int = 4,
) -> dict:
    """Build a format's instances on a Dask cluster and write them as Parquet shards under `output_dir`.

    Args:
        data_args (`DataArguments`): The corpus and data options (the same as for the single-machine build).
        output_dir (`str`): Where ``train/`` and ``validation/`` Parquet shards, ``report.json``, ``tokenizer/`` and
            ``nsptask_build.json`` go; on a file system every worker sees.
        tokenizer: The tokenizer object.
        data_format (`str`, *optional*): The instance format (default: the data options', else ``nsp``).
        scheduler (`str`, *optional*): Address of a running Dask scheduler (``tcp://host:8786``).
        n_workers (`int`, *optional*): Without a scheduler, start a local cluster of this many single-threaded
            worker processes (default: every core).
        client (`distributed.Client`, *optional*): A client to use instead.
        shards_per_worker (`int`, *optional*, defaults to 4): Input shards per worker (load balance).
        max_shard_bytes (`int`, *optional*, defaults to 32 MB): Cut the input into shards of at most about this
            many bytes (of the file as stored, compressed or not), however many workers there are: what bounds a
            worker's memory in stage 1. A file that cannot be cut (a gzip file, a plain bz2 dump) stays one shard.
        max_pools_per_bucket (`int`, *optional*, defaults to 4): At most this many document pools
            (``pool_size`` documents each) per stage-3 bucket: what bounds a worker's memory in stage 3.

    Returns:
        `dict`: the build report (documents, instances per split, shards, buckets, workers).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - the dask extra
        raise ImportError("The Dask engine needs dask.distributed: pip install 'nsptask[dask]'") from err

    config = pretraining_builder(data_args, tokenizer, data_format).config
    owned = None
    if client is None:
        if scheduler:
            client = Client(scheduler)
        else:
            owned = LocalCluster(n_workers=n_workers or os.cpu_count(), threads_per_worker=1, processes=True)
            client = Client(owned)
    logger.info("nsptask: Dask dashboard at %s", client.dashboard_link)
    out = Path(output_dir)
    try:
        workers, infos, shards, ignored, assignment, plan, built = _run_stages(
            client, config, tokenizer, out, shards_per_worker, max_shard_bytes, max_pools_per_bucket
        )
    finally:
        if owned is not None:
            client.close()
            owned.close()
    shutil.rmtree(out / "_work", ignore_errors=True)
    tokenizer.save_pretrained(out / "tokenizer")
    # The text hashes of the training documents: the record `pretrain --dataset` keeps beside the model.
    train_hashes = [i["text_hash"][assignment[n]["train"][0]] for n, i in enumerate(infos)]
    np.save(
        out / PRETRAINING_DOCUMENTS_FILE,
        np.unique(np.concatenate(train_hashes) if train_hashes else np.zeros(0, np.uint64)).astype(np.uint64),
    )
    unknown, tokens = sum(i["unk_tokens"] for i in infos), sum(i["tokens"] for i in infos)
    report = {
        "format": config.data_format,
        "engine": "dask",
        "workers": workers,
        "input_shards": len(shards),
        "files_ignored": ignored,
        "documents_read": int(sum(i["rows"] for i in infos)),
        "documents_used": int(sum(int(i["usable"].sum()) for i in infos)),
        "tokens": int(tokens),
        "unknown_tokens": int(unknown),
        "unknown_token_rate": unknown / tokens if tokens else 0.0,
        "splits": {
            split: {
                "documents": int(sum(len(assignment[n][split][0]) for n in range(len(infos)))),
                "instances": int(sum(b["instances"] for b in built if b["split"] == split)),
                "buckets": len(plan[split]),
            }
            for split in plan
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    record = {
        "format": config.data_format,
        "engine": "dask",
        "fingerprint": config.fingerprint(),
        "data_arguments": data_args.to_dict(),
        "report": report,
    }
    (out / BUILD_RECORD_FILE).write_text(json.dumps(record, indent=2, default=str))
    return report
