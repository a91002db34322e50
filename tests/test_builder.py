"""The datasets builder: splits, determinism, num_proc, streaming, sharding, report."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import find, segments, split_documents

from nsptask import InstanceConfig, PretrainingDataBuilder, SplitOptions, build_pretraining_dataset, instance_features


def _arrow_digest(dataset_dict, out: Path) -> dict[str, str]:
    dataset_dict.save_to_disk(out, num_shards={k: 1 for k in dataset_dict})
    return {
        split: hashlib.sha256((out / split / "data-00000-of-00001.arrow").read_bytes()).hexdigest()
        for split in dataset_dict
    }


@pytest.mark.parametrize("fmt", ["nsp", "full-sentences"])
def test_builds_are_byte_identical_across_runs_and_num_proc(tokenizer, tmp_path, fmt):
    one = build_pretraining_dataset(data_format=fmt, tokenizer=tokenizer, data_cache_dir=tmp_path / "c1", num_proc=1)
    again = build_pretraining_dataset(data_format=fmt, tokenizer=tokenizer, data_cache_dir=tmp_path / "c2", num_proc=1)
    two = build_pretraining_dataset(data_format=fmt, tokenizer=tokenizer, data_cache_dir=tmp_path / "c3", num_proc=2)
    digest = _arrow_digest(one, tmp_path / "a")
    assert digest == _arrow_digest(again, tmp_path / "b")
    assert digest == _arrow_digest(two, tmp_path / "c")


def test_different_seed_gives_different_instances(tokenizer):
    a = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, instance_seed=1)["train"]
    b = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, instance_seed=2)["train"]
    assert a["input_ids"][:50] != b["input_ids"][:50]


def test_no_document_in_both_splits(tokenizer):
    from nsptask.preprocessing import is_validation_document

    builder = PretrainingDataBuilder(
        config_name="nsp", tokenizer=tokenizer, split=SplitOptions(validation_fraction=0.2)
    )
    builder.download_and_prepare()
    data = builder.as_dataset()
    train_ids = builder.split_documents("train")["doc_id"]
    val_ids = builder.split_documents("validation")["doc_id"]
    assert 0 < len(val_ids) < len(train_ids) and not set(train_ids) & set(val_ids)
    # The split follows the document id and the split seed (the scalar rule and the vectorised one agree).
    assert all(is_validation_document(d, 0.2, 12345) for d in val_ids)
    assert not any(is_validation_document(d, 0.2, 12345) for d in train_ids)
    # And the validation instances' text comes from validation documents, not from training ones.
    train_docs = split_documents(builder, "train")
    val_docs = split_documents(builder, "validation")
    assert len(val_docs) == len(set(data["validation"]["doc_index"]))
    for row in data["validation"].select(range(100)):
        a, _ = segments(row["input_ids"], tokenizer.sep_token_id)
        assert find(val_docs[row["doc_index"]], a)
        assert not any(find(doc, a) for doc in train_docs if len(a) > 12)


def test_streaming_yields_the_same_instances_as_the_arrow_build_in_corpus_order(tokenizer):
    kwargs = dict(data_format="nsp", tokenizer=tokenizer, pool_size=40, pool_order="corpus")
    arrow = build_pretraining_dataset(**kwargs)
    stream = build_pretraining_dataset(streaming=True, **kwargs)
    for split in ("train", "validation"):
        streamed = list(stream[split])
        assert len(streamed) == len(arrow[split])
        assert [r["input_ids"] for r in streamed] == arrow[split]["input_ids"]
        assert [r["next_sentence_label"] for r in streamed] == arrow[split]["next_sentence_label"]
    with pytest.raises(ValueError, match="pool_order='corpus'"):
        build_pretraining_dataset(streaming=True, data_format="nsp", tokenizer=tokenizer)


def test_shards_together_equal_the_single_build(tokenizer):
    kwargs = dict(data_format="sop", tokenizer=tokenizer, pool_size=10, validation_fraction=0)
    full = build_pretraining_dataset(**kwargs)["train"]
    shards = [build_pretraining_dataset(num_shards=3, shard_index=i, **kwargs)["train"] for i in range(3)]
    assert sum(len(s) for s in shards) == len(full)
    assert sorted(map(tuple, full["input_ids"])) == sorted(t for s in shards for t in map(tuple, s["input_ids"]))
    docs = [set(s["doc_index"]) for s in shards]
    assert not (docs[0] & docs[1]) and not (docs[1] & docs[2])


def test_notnext_segments_come_from_the_same_pool(tokenizer):
    data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, pool_size=10, validation_fraction=0)[
        "train"
    ]
    a, b = np.array(data["doc_index"]), np.array(data["b_doc_index"])
    assert (a // 10 == b // 10).all()


def test_builder_exposes_one_config_per_format_with_class_labels():
    names = [c.name for c in PretrainingDataBuilder.BUILDER_CONFIGS]
    assert names == ["nsp", "sentence-pair", "sop", "full-sentences", "doc-sentences", "coherence"]
    assert instance_features("nsp")["next_sentence_label"].names == ["IsNext", "NotNext"]
    assert instance_features("sop")["sentence_order_label"].names == ["InOrder", "Swapped"]
    assert "token_type_ids" not in instance_features("full-sentences")


def test_builder_can_be_used_directly(tokenizer, tmp_path):
    builder = PretrainingDataBuilder(
        config_name="sop", tokenizer=tokenizer, instances=InstanceConfig(max_seq_length=64), cache_dir=str(tmp_path)
    )
    builder.download_and_prepare()
    data = builder.as_dataset()
    assert set(data) == {"train", "validation"}
    assert max(len(x) for x in data["train"]["input_ids"]) <= 64


def test_report_accounts_for_documents_sentences_and_tokens(tokenizer):
    data, report = build_pretraining_dataset(data_format="sop", tokenizer=tokenizer, return_report=True)
    corpus = report["corpus"]
    assert corpus["documents_read"] == 103 and corpus["documents_used"] == 103
    assert corpus["sentences"] > 20_000 and corpus["tokens"] > 600_000
    assert sum(s["documents"] for s in report["splits"].values()) == corpus["documents_used"]
    assert sum(s["source_tokens"] for s in report["splits"].values()) == corpus["tokens"]
    train = report["splits"]["train"]
    assert train["instances"] == len(data["train"])
    assert sum(train["labels"].values()) == train["instances"]
    assert sum(train["length_histogram"].values()) == train["instances"]
    assert train["unused_tokens"] == 0  # every token of SOP's documents is in an instance or counted as truncated


@pytest.mark.parametrize("data_format", ["sop", "full-sentences"])
def test_report_counts_every_token_with_a_roberta_template(data_format):
    """RoBERTa's pair template has four special tokens (<s> A </s></s> B </s>), BERT's three: the token accounting
    follows the tokenizer's own template."""
    from nsptask.corpus import iter_documents
    from nsptask.instances import SequenceTemplate
    from nsptask.tokenization import train_tokenizer

    docs = list(iter_documents())
    bpe = train_tokenizer((s for d in docs[:20] for s in d["sentences"]), model="bpe", vocab_size=2000)
    assert SequenceTemplate.from_tokenizer(bpe).pair_specials == 4
    _, report = build_pretraining_dataset(data_format=data_format, tokenizer=bpe, return_report=True)
    assert report["splits"]["train"]["instances"] > 100
    assert report["splits"]["train"]["unused_tokens"] == 0


def test_long_sentences_are_cut_and_counted(tmp_path, tokenizer):
    corpus = tmp_path / "long.txt"
    long_sentence = " ".join(["the quick brown fox jumps over the lazy dog"] * 30)
    corpus.write_text(f"Short one.\n{long_sentence}\nAnother.\n\nSecond document here.\nAnd more.\n")
    data, report = build_pretraining_dataset(
        corpus,
        data_format="doc-sentences",
        tokenizer=tokenizer,
        max_seq_length=32,
        validation_fraction=0,
        return_report=True,
    )
    assert report["corpus"]["sentences_cut_too_long"] == 1
    assert report["splits"]["train"]["unused_tokens"] == 0
    assert max(len(x) for x in data["train"]["input_ids"]) <= 32


def test_tokie_backend_gives_identical_instances(tokenizer, tmp_path):
    pytest.importorskip("tokie")
    hf = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, data_cache_dir=tmp_path / "hf")
    fast = build_pretraining_dataset(
        data_format="nsp", tokenizer=tokenizer, tokenizer_backend="tokie", data_cache_dir=tmp_path / "t"
    )
    assert _arrow_digest(hf, tmp_path / "a") == _arrow_digest(fast, tmp_path / "b")  # every column, byte for byte


def test_an_uncompressed_multi_megabyte_corpus_is_cut_into_shards_with_identical_results(tokenizer, tmp_path):
    """An uncompressed file is read as byte ranges by the processes: the instances are those of one process."""
    from nsptask.corpus import iter_documents, plan_shards

    corpus = tmp_path / "wiki.txt"
    with open(corpus, "w") as f:
        for doc in iter_documents():
            f.write("\n".join(doc["sentences"]) + "\n\n")
    assert corpus.stat().st_size > 2_000_000 and len(plan_shards(corpus, 2)[0]) == 2
    one = build_pretraining_dataset(
        corpus, data_format="nsp", tokenizer=tokenizer, data_cache_dir=tmp_path / "c1", num_proc=1
    )
    two = build_pretraining_dataset(
        corpus, data_format="nsp", tokenizer=tokenizer, data_cache_dir=tmp_path / "c2", num_proc=2
    )
    assert _arrow_digest(one, tmp_path / "a") == _arrow_digest(two, tmp_path / "b")


def test_a_tokenizer_used_with_truncation_before_still_builds_whole_sentences(tmp_path):
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    reference = build_pretraining_dataset(
        data_format="doc-sentences", tokenizer=tokenizer, data_cache_dir=tmp_path / "a"
    )
    tokenizer(["a sentence to set the backend's truncation"], truncation=True, max_length=4)
    again = build_pretraining_dataset(
        data_format="doc-sentences", tokenizer=default_tokenizer(), data_cache_dir=tmp_path / "b"
    )
    truncated_state = build_pretraining_dataset(
        data_format="doc-sentences", tokenizer=tokenizer, data_cache_dir=tmp_path / "c"
    )
    assert reference["train"]["input_ids"] == again["train"]["input_ids"] == truncated_state["train"]["input_ids"]


def _instances_by_document(builder, dataset_dict, label: str | None):
    from conftest import segments

    out: dict = {}
    for split, data in dataset_dict.items():
        ids = builder.split_documents(split)["doc_id"]
        for row in data:
            key = ids[row["doc_index"]]
            if label is None:
                out.setdefault(key, []).append(tuple(row["input_ids"]))
                continue
            a, b = segments(row["input_ids"], builder.tokenizer.sep_token_id)
            # A document's own choices: its labels, its A segments, and B when it continues A.
            own = tuple(b) if row[label] == 0 else None
            out.setdefault(key, []).append((row[label], tuple(a) if row[label] == 0 else len(a) > 0, own))
    return out


@pytest.mark.parametrize(("fmt", "label"), [("sop", None), ("nsp", "next_sentence_label")])
def test_adding_a_file_leaves_the_other_documents_instances_unchanged(tmp_path, tokenizer, fmt, label):
    from nsptask.corpus import iter_documents

    docs = [d["sentences"] for d in iter_documents()]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("\n\n".join("\n".join(s) for s in docs[:60]) + "\n")
    first = PretrainingDataBuilder(
        config_name=fmt, tokenizer=tokenizer, source=str(corpus), cache_dir=str(tmp_path / "c1")
    )
    first.download_and_prepare()
    before = _instances_by_document(first, first.as_dataset(), label)
    (corpus / "b.txt").write_text("\n\n".join("\n".join(s) for s in docs[60:]) + "\n")
    second = PretrainingDataBuilder(
        config_name=fmt, tokenizer=tokenizer, source=str(corpus), cache_dir=str(tmp_path / "c2")
    )
    second.download_and_prepare()
    after = _instances_by_document(second, second.as_dataset(), label)
    assert len(after) > len(before) >= 55
    for doc_id, instances in before.items():
        assert after[doc_id] == instances, doc_id


def test_a_topic_sorted_corpus_gets_the_notnext_pairs_of_a_shuffled_one(tmp_path, tokenizer):
    """Pools after a global shuffle: NotNext B comes from anywhere in the corpus, whatever its order. Here every
    article is cut into consecutive pieces (documents of one topic side by side, as in a corpus sorted by topic);
    the topic overlap of A and B in NotNext pairs is the same as for the pieces in random order, and much higher
    with pools of consecutive documents."""
    import random

    from nsptask.baselines import overlap_scores
    from nsptask.corpus import iter_documents

    pieces = [s[k : k + 12] for s in (d["sentences"] for d in iter_documents()) for k in range(0, len(s), 12)]
    shuffled = list(pieces)
    random.Random(0).shuffle(shuffled)
    for name, order in (("sorted", pieces), ("shuffled", shuffled)):
        (tmp_path / f"{name}.txt").write_text("\n\n".join("\n".join(s) for s in order) + "\n")

    def notnext_overlap(name, pool_order):
        data = build_pretraining_dataset(
            tmp_path / f"{name}.txt",
            data_format="nsp",
            tokenizer=tokenizer,
            pool_size=50,
            pool_order=pool_order,
            validation_fraction=0,
            data_cache_dir=tmp_path / f"cache-{name}-{pool_order}",
        )["train"]
        negatives = data.filter(lambda r: r["next_sentence_label"] == 1)
        scores, _ = overlap_scores(negatives, tokenizer.all_special_ids)
        return float(np.mean(scores))

    sorted_global, shuffled_global = notnext_overlap("sorted", "shuffled"), notnext_overlap("shuffled", "shuffled")
    sorted_local = notnext_overlap("sorted", "corpus")
    assert abs(sorted_global - shuffled_global) < 0.1 * shuffled_global
    assert sorted_local > 1.5 * sorted_global  # consecutive pools draw negatives of the same topic


def test_report_warns_on_skewed_labels_and_a_validation_split_too_small(tmp_path, tokenizer):
    """Documents of one sentence make NotNext pairs only (no IsNext B exists); a small corpus leaves a validation
    split too small to measure anything. Both are said in the report's warnings."""
    from nsptask.corpus import iter_documents

    path = tmp_path / "short.txt"
    docs = [d["sentences"] for d in iter_documents()][:60]
    path.write_text("\n\n".join(sentences[0] for sentences in docs) + "\n")  # one sentence per document
    _, report = build_pretraining_dataset(
        path, data_format="nsp", tokenizer=tokenizer, max_seq_length=64, return_report=True
    )
    warnings = report["warnings"]
    assert report["splits"]["train"]["label_balance"] > 0.9
    assert any("label balance" in w and "outside 0.4-0.6" in w for w in warnings), warnings
    assert any(w.startswith("validation:") and "too few to measure" in w for w in warnings), warnings
    # A corpus of real documents has neither warning.
    _, report = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, return_report=True)
    assert not any("label balance" in w or "too few" in w for w in report["warnings"])


def test_a_document_id_used_twice_is_an_error(tmp_path, tokenizer):
    """Rows sharing an id form one document only when consecutive: an id that comes back later would give two
    documents one split hash and one seed."""
    import json

    path = tmp_path / "docs.jsonl"
    rows = [{"id": "a", "text": "One sentence here. Another one."}, {"id": "b", "text": "B starts. B ends."}]
    rows.append({"id": "a", "text": "A again, later. It repeats the id."})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"Document id 'docs.jsonl:a'|Document id 'a'.*used by 2 documents"):
        build_pretraining_dataset(
            path, data_format="nsp", tokenizer=tokenizer, doc_id_column="id", validation_fraction=0
        )


# The instances of the bundled corpus for every format, as the code built them before its data options became one
# object (and every build since): a change of the algorithm changes these, and must raise ALGORITHM_VERSION.
PINNED_INSTANCES = {
    "nsp/default": {"train": "6e5f0eb8035d5bd4", "validation": "316ebc44370eee8a"},
    "nsp/short": {"train": "6224c8451d3918a3", "validation": "9be75c854b477cb4"},
    "sentence-pair/default": {"train": "eb5aeacc9f1f98a5", "validation": "445bde37709915c7"},
    "sentence-pair/short": {"train": "67525bc4d52ba7a8", "validation": "458a4a7e4d966d18"},
    "sop/default": {"train": "ba250bbbbce1ac55", "validation": "3798e8bdbc4f2572"},
    "sop/short": {"train": "e80fb2e27bc78613", "validation": "8e7af8187628d8ed"},
    "full-sentences/default": {"train": "36b51c16d2bc4c05", "validation": "2c0d8d2cfa6e7c62"},
    "full-sentences/short": {"train": "0bcb3f6799aafeb8", "validation": "02984646a54ddd60"},
    "doc-sentences/default": {"train": "a8d8cd8c077482ff", "validation": "2c84ce544bda319c"},
    "doc-sentences/short": {"train": "6e437668420f10a3", "validation": "2fecefee64d62bc6"},
    "coherence/default": {"train": "cebca441c58fa5c9", "validation": "0270cd8b014168ae"},
    "coherence/short": {"train": "57793020e301bda5", "validation": "c2511be7201098d2"},
}


def _table_digest(dataset) -> str:
    import pyarrow.compute as pc

    table = dataset.with_format("arrow")[:]
    digest = hashlib.sha256()
    for name in sorted(table.column_names):
        column = table[name]
        digest.update(name.encode())
        if hasattr(column.type, "value_type"):
            digest.update(pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64).tobytes())
            column = pc.list_flatten(column)
        digest.update(column.to_numpy(zero_copy_only=False).astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("backend", ["hf", "auto"])
def test_instances_of_the_bundled_corpus_are_pinned_for_every_format(tokenizer, tmp_path, backend):
    found = {}
    for key in PINNED_INSTANCES:
        data_format, variant = key.split("/")
        options = {"max_seq_length": 64, "dupe_factor": 2} if variant == "short" else {}
        data = build_pretraining_dataset(
            tokenizer=tokenizer,
            data_format=data_format,
            tokenizer_backend=backend,
            data_cache_dir=str(tmp_path / backend),
            **options,
        )
        found[key] = {split: _table_digest(part) for split, part in data.items()}
    assert found == PINNED_INSTANCES
