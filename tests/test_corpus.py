"""Corpus sources, and bad input: clear errors, nothing dropped without being counted."""

from __future__ import annotations

import bz2
import json

import pytest

from nsptask import CorpusError, build_pretraining_dataset, iter_documents, load_documents
from nsptask.corpus import bundled_corpus_path
from nsptask.segmentation import get_splitter

BERT_TEXT = "First sentence of doc one.\nSecond sentence of doc one.\n\nDoc two starts here.\nIt ends here.\n"


def _kept(docs):
    return [d for d in docs if not d["skipped"]]


def test_bundled_corpus_is_real_wikipedia_in_berts_format():
    docs = list(iter_documents())
    assert len(docs) == 103
    assert docs[0]["sentences"][0].startswith("Anarchism is a political philosophy")
    assert sum(len(d["sentences"]) for d in docs) > 20_000
    assert bundled_corpus_path().stat().st_size < 1_200_000
    assert (bundled_corpus_path().parent / "ATTRIBUTION.md").read_text().count("CC BY-SA") >= 1


def test_sentence_format_reads_documents_between_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(BERT_TEXT)
    docs = list(iter_documents(path))
    assert [d["sentences"] for d in docs] == [
        ["First sentence of doc one.", "Second sentence of doc one."],
        ["Doc two starts here.", "It ends here."],
    ]
    assert docs[0]["doc_id"] == "c.txt:1" and docs[1]["doc_id"] == "c.txt:4"


def test_crlf_and_bom_read_like_plain_lf(tmp_path):
    plain, windows = tmp_path / "lf.txt", tmp_path / "crlf.txt"
    plain.write_text(BERT_TEXT)
    windows.write_bytes(b"\xef\xbb\xbf" + BERT_TEXT.replace("\n", "\r\n").encode())
    assert [d["sentences"] for d in iter_documents(windows)] == [d["sentences"] for d in iter_documents(plain)]


def test_trailing_blank_lines_and_empty_documents_build_and_are_counted(tmp_path, tokenizer):
    path = tmp_path / "c.txt"
    path.write_text("\n" + BERT_TEXT.replace("\n\n", "\n\n\n\n") + "\n\n\n")
    docs = list(iter_documents(path))
    assert len(_kept(docs)) == 2
    empty = [d for d in docs if d["skipped"] == "empty"]
    assert len(empty) == 1 + 2 + 2  # leading blank, two extra separators, two extra trailing blanks
    data, report = build_pretraining_dataset(
        path, data_format="nsp", tokenizer=tokenizer, validation_fraction=0, return_report=True
    )
    assert len(data["train"]) > 0
    assert report["corpus"]["documents_skipped"] == {"empty": 5}


def test_invalid_utf8_names_file_line_and_byte_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Good line.\nBad \xff byte here.\n")
    with pytest.raises(CorpusError) as err:
        list(iter_documents(path))
    message = str(err.value)
    assert "bad.txt, line 2" in message and "byte offset 15" in message and "errors='replace'" in message
    docs = list(iter_documents(path, encoding_errors="replace"))
    assert docs[0]["sentences"][1] == "Bad \ufffd byte here."


def test_empty_and_blank_only_files_are_clear_errors(tmp_path, tokenizer):
    empty, blank = tmp_path / "empty.txt", tmp_path / "blank.txt"
    empty.write_text("")
    blank.write_text("\n  \n\n")
    for path in (empty, blank):
        with pytest.raises(ValueError, match="no usable document"):
            build_pretraining_dataset(path, data_format="nsp", tokenizer=tokenizer, validation_fraction=0)
    assert list(iter_documents(empty))[0]["skipped"] == "empty-file"


def test_single_document_corpus_is_rejected_for_nsp_but_fine_for_sop(tmp_path, tokenizer):
    path = tmp_path / "one.txt"
    path.write_text("Only one document here.\nIt has two sentences.\nAnd a third.\n")
    with pytest.raises(ValueError, match="at least two documents with text"):
        build_pretraining_dataset(path, data_format="nsp", tokenizer=tokenizer, validation_fraction=0)
    data = build_pretraining_dataset(path, data_format="sop", tokenizer=tokenizer, validation_fraction=0)
    assert len(data["train"]) >= 1


def test_documents_of_one_sentence_get_random_next_segments(tmp_path, tokenizer):
    path = tmp_path / "ones.txt"
    path.write_text("\n\n".join(f"Document number {i} has one sentence." for i in range(10)) + "\n")
    data = build_pretraining_dataset(path, data_format="nsp", tokenizer=tokenizer, validation_fraction=0)["train"]
    assert len(data) == 10
    assert set(data["next_sentence_label"]) == {1}
    assert all(a != b for a, b in zip(data["doc_index"], data["b_doc_index"]))


def test_raw_text_paragraphs_are_documents_split_into_sentences(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text(
        "Dr. Smith paid 3.50 dollars for the U.S. edition. He left at 5 p.m. today.\n"
        "It was cheap.\n\nA second paragraph. It has two sentences.\n"
    )
    docs = list(iter_documents(path, corpus_format="text"))
    assert docs[0]["sentences"] == [
        "Dr. Smith paid 3.50 dollars for the U.S. edition.",
        "He left at 5 p.m. today.",
        "It was cheap.",
    ]
    assert docs[1]["sentences"] == ["A second paragraph.", "It has two sentences."]
    whole = list(iter_documents(path, corpus_format="text", document_per="file"))
    assert len(whole) == 1 and len(whole[0]["sentences"]) == 5


def test_chinese_raw_text_splits_on_full_width_marks_and_keeps_quotes():
    split = get_splitter("sentencex", "zh")
    assert split("他说：“今天天气很好。”我们去公园吧！真的吗？价格是3.5元。") == [
        "他说：“今天天气很好。”",
        "我们去公园吧！",
        "真的吗？",
        "价格是3.5元。",
    ]


def test_pysbd_splitter_is_swappable(tmp_path):
    pytest.importorskip("pysbd")
    path = tmp_path / "raw.txt"
    path.write_text("Mr. Jones arrived. He sat down.\n")
    assert list(iter_documents(path, corpus_format="text", splitter="pysbd"))[0]["sentences"] == [
        "Mr. Jones arrived.",
        "He sat down.",
    ]
    assert list(iter_documents(path, corpus_format="text", splitter=lambda t: [t]))[0]["sentences"] == [
        "Mr. Jones arrived. He sat down."
    ]


def test_jsonl_csv_and_parquet_tables_with_document_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"id": "a", "text": "Alpha one. Alpha two."},
        {"id": "a", "text": "Alpha three."},
        {"id": "b", "text": "Beta one. Beta two."},
    ]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    csv = tmp_path / "c.csv"
    csv.write_text("id,text\n" + "".join(f'{r["id"]},"{r["text"]}"\n' for r in rows))
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    expected = [["Alpha one.", "Alpha two.", "Alpha three."], ["Beta one.", "Beta two."]]
    for path in (jsonl, csv, parquet):
        docs = list(iter_documents(path, doc_id_column="id"))
        assert [d["sentences"] for d in docs] == expected, path
        assert [d["doc_id"] for d in docs] == ["a", "b"]
    assert len(list(iter_documents(jsonl))) == 3  # without an id column, each row is a document


def test_table_with_a_list_of_sentences_column(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": ["One.", "Two."]}) + "\n")
    assert list(iter_documents(path))[0]["sentences"] == ["One.", "Two."]


def test_missing_text_column_names_the_columns_found(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(CorpusError, match=r"no text column 'text'.*\['body'\].*text_column="):
        list(iter_documents(path))


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n{not json\n")
    with pytest.raises(CorpusError, match="c.jsonl, line 2: invalid JSON"):
        list(iter_documents(path))


def test_datasets_objects_are_sources():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["One here. Two here.", "Three here."]})
    assert [d["sentences"] for d in iter_documents(ds)] == [["One here.", "Two here."], ["Three here."]]
    stream = ds.to_iterable_dataset()
    assert len(list(iter_documents(stream))) == 2
    assert load_documents(ds)["sentences"] == [["One here.", "Two here."], ["Three here."]]


def test_missing_file_is_a_clear_error():
    with pytest.raises(CorpusError, match="no such file"):
        list(iter_documents("./does/not/exist.txt"))


WIKI_DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">
<page><title>Redirected</title><ns>0</ns><id>1</id><redirect title="Target" />
<revision><text>#REDIRECT [[Target]]</text></revision></page>
<page><title>Talk:Thing</title><ns>1</ns><id>2</id><revision><text>Talk page text.</text></revision></page>
<page><title>Tiny</title><ns>0</ns><id>3</id><revision><text>'''Tiny''' is small.{{geo-stub}}</text></revision></page>
<page><title>Paris</title><ns>0</ns><id>4</id><revision><text>{{Infobox city|name=Paris}}
'''Paris''' is the [[capital city|capital]] of [[France]].&lt;ref&gt;A source.&lt;/ref&gt; It has about 2.1 million residents. {LONG}

== History ==
[[File:Paris.jpg|thumb|A caption.]]
The city was founded in the 3rd century BC. It grew along the [[Seine]].

== References ==
{{reflist}}
[[Category:Capitals]]
</text></revision></page>
</mediawiki>
"""


def test_wikipedia_dump_articles_become_documents_and_skips_are_counted(tmp_path):
    pytest.importorskip("mwparserfromhell")
    filler = " ".join(f"Sentence number {i} adds prose to the article." for i in range(12))
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(bz2.compress(WIKI_DUMP.replace("{LONG}", filler).encode()))
    docs = list(iter_documents(path))
    kept = _kept(docs)
    assert len(kept) == 1 and kept[0]["doc_id"] == "wiki:4"
    sentences = kept[0]["sentences"]
    assert sentences[0] == "Paris is the capital of France."
    assert "The city was founded in the 3rd century BC." in sentences
    text = " ".join(sentences)
    for markup in ("[[", "{{", "<ref", "A source", "caption", "History", "Category", "Capitals"):
        assert markup not in text
    reasons = sorted(d["skipped"] for d in docs if d["skipped"])
    assert reasons == ["non_article_pages", "redirects", "stubs"]


def _bundled_docs(n=40):
    return [d["sentences"] for d in iter_documents()][:n]


def _write_sentences(path, docs):
    with open(path, "w") as f:
        f.write("\n")  # a leading empty document
        for i, sentences in enumerate(docs):
            f.write("\n".join(sentences) + ("\n\n\n" if i % 7 == 0 else "\n\n"))


def _write_text(path, docs, per_line=False):
    with open(path, "w") as f:
        for sentences in docs:
            f.write(" ".join(sentences) + ("\n" if per_line else "\n\n"))


def _write_jsonl(path, docs):
    with open(path, "w") as f:
        for sentences in docs:
            f.write(json.dumps({"text": " ".join(sentences)}) + "\n")


def _write_parquet(path, docs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [" ".join(s) for s in docs]}), path, row_group_size=4)


@pytest.mark.parametrize(
    ("name", "writer", "options"),
    [
        ("big.txt", _write_sentences, {}),
        ("raw.txt", _write_text, {"corpus_format": "text"}),
        ("news.txt", lambda p, d: _write_text(p, d, per_line=True), {"corpus_format": "text", "document_per": "line"}),
        ("rows.jsonl", _write_jsonl, {}),
        ("rows.parquet", _write_parquet, {}),
    ],
)
def test_reading_a_file_in_shards_gives_the_same_documents_and_ids(tmp_path, name, writer, options):
    from nsptask.corpus import ReaderOptions, plan_shards, read_shard

    path = tmp_path / name
    writer(path, _bundled_docs())
    reader = ReaderOptions(**options)
    whole = list(iter_documents(path, reader))
    shards, _ = plan_shards(path, 9, reader, min_shard_bytes=1)
    assert len(shards) >= 5 and [s.index for s in shards] == list(range(len(shards)))
    sharded = [d for s in shards for d in read_shard(s, reader)]
    assert sharded == whole
    kept = [d for d in whole if not d["skipped"]]
    assert len({d["doc_id"] for d in kept}) == len(kept) == 40


def _wiki_pages(n):
    pages = [
        (f"Article {i}", "\n\n".join(" ".join(s[k : k + 4]) for k in range(0, len(s), 4)))
        for i, s in enumerate(_bundled_docs(n))
    ]
    pages.insert(3, ("Short", "'''Short''' is a stub.{{stub}}"))
    return pages


def test_multistream_wikipedia_dump_is_read_in_stream_ranges(tmp_path):
    pytest.importorskip("mwparserfromhell")
    from nsptask.corpus import plan_shards, read_shard
    from nsptask.wikipedia import write_multistream_dump

    dump, _ = write_multistream_dump(_wiki_pages(25), tmp_path / "testwiki-multistream.xml.bz2", pages_per_stream=4)
    whole = list(iter_documents(dump))
    shards, _ = plan_shards(dump, 4, min_shard_bytes=1)
    assert len(shards) >= 3 and all(s.wiki_name == "testwiki" for s in shards)
    sharded = [d for s in shards for d in read_shard(s)]
    assert sharded == whole
    kept = _kept(whole)
    assert len(kept) == 25 and kept[0]["doc_id"] == "testwiki:1"  # the wiki's name and the page id
    assert [d["skipped"] for d in whole].count("stubs") == 1


def test_truncated_wikipedia_dump_is_a_clear_error(tmp_path):
    pytest.importorskip("mwparserfromhell")
    filler = " ".join(f"Sentence number {i} adds prose to the article." for i in range(12))
    text = WIKI_DUMP.replace("{LONG}", filler)
    cut = tmp_path / "cut.xml"
    cut.write_text(text[: text.index("== History ==")])
    with pytest.raises(
        CorpusError, match=r"cut.xml, line \d+, column \d+: expected well-formed MediaWiki XML.*truncated"
    ):
        list(iter_documents(cut))
    cut_bz2 = tmp_path / "cut.xml.bz2"
    cut_bz2.write_bytes(bz2.compress(text.encode())[:-40])
    with pytest.raises(CorpusError, match="cut.xml.bz2: the compressed dump ends early"):
        list(iter_documents(cut_bz2))


def test_document_ids_do_not_depend_on_how_the_path_is_spelled(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "lee.jsonl"
    _write_jsonl(path, _bundled_docs(6))
    monkeypatch.chdir(tmp_path)
    spellings = ["sub/lee.jsonl", "./sub/lee.jsonl", str(path), "sub/../sub/lee.jsonl"]
    ids = [[d["doc_id"] for d in iter_documents(s)] for s in spellings]
    assert ids[0][:2] == ["lee.jsonl:1", "lee.jsonl:2"]
    assert all(i == ids[0] for i in ids)
    # Below a directory, a file is named by its path relative to it.
    assert next(iter_documents("sub"))["doc_id"] == "lee.jsonl:1"
    assert next(iter_documents(tmp_path))["doc_id"] == "sub/lee.jsonl:1"


def test_spark_output_folders_are_read_and_their_markers_ignored(tmp_path):
    from nsptask.corpus import corpus_files

    out = tmp_path / "spark_out"
    out.mkdir()
    _write_jsonl(out / "part-00000.jsonl", _bundled_docs(3))
    _write_jsonl(out / "part-00001.jsonl", _bundled_docs(5)[3:])
    (out / "_SUCCESS").write_text("")
    (out / ".part-00000.jsonl.crc").write_bytes(b"\x00\x01crc")
    (out / "_temporary").mkdir()
    (out / "_temporary" / "junk.jsonl").write_text("{broken\n")
    docs = list(iter_documents(out))
    assert len(docs) == 5 and docs[3]["doc_id"] == "part-00001.jsonl:1"
    files, ignored = corpus_files(out)
    assert len(files) == 2 and len(ignored) == 3


def test_two_files_with_one_name_are_an_error_naming_the_fix(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "c.txt").write_text(BERT_TEXT)
    with pytest.raises(CorpusError, match="same ids.*Pass the directory that holds both"):
        list(iter_documents([tmp_path / "a" / "c.txt", tmp_path / "b" / "c.txt"]))
    assert len(list(iter_documents(tmp_path))) == 4  # as a directory, they are a/c.txt and b/c.txt


def test_jsonl_row_without_the_text_key_names_its_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": "fine."}) + "\n\n" + json.dumps({"body": "x"}) + "\n")
    with pytest.raises(CorpusError, match=r"c.jsonl, line 3: no text column 'text'.*\['body'\]"):
        list(iter_documents(path))


def test_prose_in_a_txt_file_is_not_read_as_one_sentence_per_line(tmp_path):
    path = tmp_path / "prose.txt"
    _write_text(path, _bundled_docs(8))
    with pytest.raises(
        CorpusError, match=r"prose.txt: expected one sentence per line.*running prose.*--corpus_format text"
    ):
        list(iter_documents(path))
    docs = list(iter_documents(path, corpus_format="text"))
    assert len(docs) == 8 and len(docs[0]["sentences"]) > 5
    assert len(list(iter_documents(path, corpus_format="sentences"))) == 8  # when asked for, it is read as asked


def test_hard_wrapped_prose_is_not_read_as_one_sentence_per_line(tmp_path):
    """Text wrapped at 70 characters (Project Gutenberg's layout) has at most one sentence end per line; its line
    breaks inside sentences give it away."""
    import textwrap

    docs = _bundled_docs(6)
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(textwrap.fill(" ".join(sentences), width=70) for sentences in docs) + "\n")
    with pytest.raises(CorpusError, match=r"book.txt: expected one sentence per line.*hard-wrapped.*--corpus_format"):
        list(iter_documents(path))
    read = list(iter_documents(path, corpus_format="text"))
    assert len(read) == 6 and len(read[0]["sentences"]) > 5
    # A real one-sentence-per-line file (the bundled corpus's layout, headings included) is not taken for prose.
    lines = tmp_path / "lines.txt"
    lines.write_text("\n\n".join("\n".join(sentences) for sentences in docs) + "\n")
    assert len(list(iter_documents(lines))) == 6


def test_one_document_per_line_for_news_corpora(tmp_path):
    path = tmp_path / "news.txt"
    path.write_text("First story. It has two sentences.\n\nSecond story here. Also two.\nThird one.\n")
    docs = list(iter_documents(path, corpus_format="text", document_per="line"))
    assert [d["doc_id"] for d in docs] == ["news.txt:1", "news.txt:3", "news.txt:4"]
    assert docs[0]["sentences"] == ["First story.", "It has two sentences."]


def test_chinese_lines_are_not_joined_across_a_headline(tmp_path):
    path = tmp_path / "zh.txt"
    path.write_text("北京举行国际会议\n今天，会议在北京开幕。代表们讨论了合作。\n\n第二篇新闻\n天气很好。\n")
    docs = list(iter_documents(path, corpus_format="text", language="zh"))
    assert docs[0]["sentences"] == ["北京举行国际会议", "今天，会议在北京开幕。", "代表们讨论了合作。"]
    assert docs[1]["sentences"] == ["第二篇新闻", "天气很好。"]
    # English wrapped prose is joined across line breaks.
    en = tmp_path / "en.txt"
    en.write_text("The meeting opened in\nBeijing today. It ended.\n")
    assert list(iter_documents(en, corpus_format="text"))[0]["sentences"] == [
        "The meeting opened in Beijing today.",
        "It ended.",
    ]


def test_latin1_jsonl_csv_and_conll_read_with_their_encoding(tmp_path):
    from nsptask.conll import ConllError, read_conll

    text = "Zoë went to Málaga. She came back."
    jsonl, csv_file, conll = tmp_path / "a.jsonl", tmp_path / "b.csv", tmp_path / "c.conll"
    jsonl.write_bytes(('{"text": "' + text + '"}\n').encode("latin-1"))
    csv_file.write_bytes(('text\n"' + text + '"\n').encode("latin-1"))
    conll.write_bytes("Zoë\tB-PER\nMálaga\tB-LOC\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"a.jsonl, line 1.*invalid utf-8"):
        list(iter_documents(jsonl))
    with pytest.raises(ConllError, match=r"c.conll, line 1: invalid utf-8.*--encoding"):
        read_conll(conll)
    for path in (jsonl, csv_file):
        docs = list(iter_documents(path, encoding="latin-1"))
        assert docs[0]["sentences"] == ["Zoë went to Málaga.", "She came back."], path
    assert list(iter_documents(jsonl, encoding_errors="replace"))[0]["sentences"][0].startswith("Zo\ufffd")
    assert read_conll(conll, encoding="latin-1").tokens == [["Zoë", "Málaga"]]


@pytest.mark.parametrize("suffix", [".txt.gz", ".txt.bz2", ".txt.xz", ".jsonl.gz"])
def test_a_compressed_corpus_that_ends_early_is_an_error_naming_the_file(tmp_path, suffix):
    """A download or copy that stopped: the reader says which file and what was found, never a raw EOFError."""
    import gzip
    import lzma

    sentences = [f"Sentence number {i} of the article adds prose to it." for i in range(400)]
    if suffix.startswith(".jsonl"):
        text = "\n".join(json.dumps({"id": str(i), "text": " ".join(sentences[i : i + 20])}) for i in range(0, 400, 20))
    else:
        text = "\n\n".join(" ".join(sentences[i : i + 20]) for i in range(0, 400, 20))
    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix[suffix.rindex(".") :]]
    data = compress(text.encode())
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=rf"cut{suffix.replace('.', r'[.]')}: the compressed file ends early"):
        list(iter_documents(str(path), corpus_format=None if suffix.startswith(".jsonl") else "text"))
    (tmp_path / f"whole{suffix}").write_bytes(data)
    whole = iter_documents(
        str(tmp_path / f"whole{suffix}"), corpus_format=None if suffix.startswith(".jsonl") else "text"
    )
    assert len([d for d in whole if not d.get("skipped")]) == 20
