"""The Dask engine: the same instances as the single-machine build, on a local 2-worker cluster."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest


def _digest(dataset_dict) -> dict[str, str]:
    out = {}
    for split, data in dataset_dict.items():
        digest = hashlib.sha256()
        for row in data.select_columns([c for c in data.column_names if c != "token_type_ids"]):
            digest.update(repr(sorted(row.items())).encode())
        out[split] = digest.hexdigest()
    return out


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def plain_corpus(tmp_path_factory):
    """The bundled corpus as an uncompressed file of more than a megabyte: the engine cuts it into shards."""
    from nsptask.corpus import iter_documents

    path = tmp_path_factory.mktemp("corpus") / "wiki.txt"
    with open(path, "w") as f:
        for doc in iter_documents():
            f.write("\n".join(doc["sentences"]) + "\n\n")
    return path


@pytest.mark.parametrize("data_format,limits", [("nsp", {}), ("full-sentences", {"small": True})])
def test_dask_engine_writes_the_instances_of_the_single_machine_build(
    cluster_client, plain_corpus, tokenizer, tmp_path, data_format, limits
):
    from nsptask import build_pretraining_dataset
    from nsptask.arguments import DataArguments
    from nsptask.engine import build_with_dask
    from nsptask.publishing import load_build_output

    options = DataArguments.from_options(corpus=[str(plain_corpus)], pool_size=20, max_seq_length=64)
    single = build_pretraining_dataset(tokenizer=tokenizer, data_args=options.with_format(data_format))
    out = tmp_path / "dask"
    bounds = {"max_shard_bytes": 100_000, "max_pools_per_bucket": 1} if limits else {}
    report = build_with_dask(options, str(out), tokenizer, data_format=data_format, client=cluster_client, **bounds)
    assert report["input_shards"] >= 3 and report["splits"]["train"]["buckets"] >= 2  # the work was spread
    if limits:  # the memory bounds: shards of about 100 kB, one pool of 20 documents per bucket
        assert report["input_shards"] >= plain_corpus.stat().st_size // 100_000
        train_pools = -(-report["splits"]["train"]["documents"] // 20)
        assert report["splits"]["train"]["buckets"] >= train_pools - 1  # a last one-document pool joins the one before
    assert 0 <= report["unknown_token_rate"] < 0.01 and report["tokens"] > 0
    built, record, _ = load_build_output(str(out))
    assert record["format"] == data_format and (out / "tokenizer" / "tokenizer.json").exists()
    assert {k: len(v) for k, v in built.items()} == {k: len(v) for k, v in single.items()}
    assert _digest(built) == _digest(single)
    if data_format == "nsp":
        assert built["train"].features["next_sentence_label"].names == ["IsNext", "NotNext"]
    hashes = np.load(out / "pretraining_documents.npy")
    assert len(hashes) == report["splits"]["train"]["documents"]


def test_dask_engine_stops_on_a_corpus_the_tokenizer_does_not_know(cluster_client, tmp_path):
    from conftest import people_daily_corpus

    from nsptask.arguments import DataArguments
    from nsptask.engine import build_with_dask
    from nsptask.tokenization import default_tokenizer

    corpus = people_daily_corpus(tmp_path / "people_daily.txt")
    options = DataArguments.from_options(corpus=[str(corpus)], corpus_format="text", language="zh")
    with pytest.raises(ValueError, match=r"% of the corpus's tokens .* are unknown.*nsptask tokenizer"):
        build_with_dask(options, str(tmp_path / "out"), default_tokenizer(), client=cluster_client)
    assert not (tmp_path / "out" / "train").exists()  # stopped before any instance was written
