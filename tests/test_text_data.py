"""Sentence corpora: normalisation, length filter, WordNet/Europarl parsing, hash split, shipped set."""

from __future__ import annotations

import math

import pytest

from semguard.data.text import (
    WORDNET_ROOT,
    SentenceDataset,
    _unit_hash,
    filter_by_length,
    load_europarl,
    load_shipped,
    load_wordnet_domains,
    load_wordnet_examples,
    normalize_sentence,
    split_sentences,
    word_count,
)


def test_normalize_folds_case_accents_and_splits_punctuation():
    assert normalize_sentence("  Café, it's   GOOD!  ") == "cafe , it ' s good !"
    # characters outside the supported set are dropped (documented truncation)
    assert normalize_sentence("price: 5€ (approx)") == "price : 5 ( approx )"
    assert normalize_sentence("€€ ☃") == ""
    assert word_count("it ' s good !") == 3


def test_normalize_rejects_non_str():
    with pytest.raises(TypeError, match="str"):
        normalize_sentence(b"bytes")  # type: ignore[arg-type]


def test_length_filter_bounds_and_dedup():
    s = ["one two three", "one two three four", " ".join(["w"] * 30), " ".join(["w"] * 31),
         "One two three four!"]
    out = filter_by_length(s)
    assert out == ["one two three four", " ".join(["w"] * 30), "one two three four !"]
    with pytest.raises(ValueError):
        filter_by_length(s, min_words=5, max_words=4)


def _fake_wordnet(root):
    header = "  1 This software and database is being provided \"AS IS\" by Princeton\n"
    rows = {
        "noun": '00001 03 n 01 cat 0 000 | feline mammal; "the cat sat on the mat"; "cats purr"\n',
        "verb": '00002 29 v 01 run 0 000 | move fast; "she runs to the station every morning"\n',
        "adj": "00003 00 a 01 red 0 000 | of the colour of blood\n",
        "adv": '00004 02 r 01 fast 0 000 | quickly; "he drove very fast indeed"\n',
    }
    for pos, row in rows.items():
        (root / f"data.{pos}").write_text(header + row)


def test_wordnet_parser_reads_quoted_examples(tmp_path):
    _fake_wordnet(tmp_path)
    # "cats purr" (2 words) is filtered; the licence header's "AS IS" is never read
    assert sorted(load_wordnet_examples(tmp_path)) == sorted([
        "the cat sat on the mat", "she runs to the station every morning", "he drove very fast indeed"])


def test_missing_corpora_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        load_wordnet_examples(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="Europarl"):
        load_europarl(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="txt"):
        load_europarl(tmp_path / "empty")


def test_europarl_skips_markup_and_filters(tmp_path):
    d = tmp_path / "txt" / "en"
    d.mkdir(parents=True)
    (d / "ep-00-01-17.txt").write_text('<CHAPTER ID="1">\nResumption of session\n'
                                       "<SPEAKER ID=1 NAME=\"President\">\n"
                                       "I declare resumed the session of the European Parliament.\n")
    assert load_europarl(tmp_path / "txt") == ["i declare resumed the session of the european parliament ."]


def test_split_is_disjoint_deterministic_and_near_fractions():
    s = [f"sentence number {i} of the corpus" for i in range(5000)]
    a, b = split_sentences(s), split_sentences(list(reversed(s)))
    assert set(a.test) == set(b.test) and set(a.val) == set(b.val)
    assert not (set(a.train) & set(a.test)) and not (set(a.val) & set(a.test))
    assert len(a.train) + len(a.val) + len(a.test) == 5000
    sd = math.sqrt(5000 * 0.1 * 0.9)  # binomial spread of the test count
    assert abs(len(a.test) - 500) < 4 * sd
    with pytest.raises(ValueError):
        split_sentences(s, test_fraction=0.0)


def test_shipped_set_is_normalised_held_out_and_in_range():
    s = load_shipped()
    assert len(s) == 1000 and len(set(s)) == 1000
    assert all(normalize_sentence(x) == x and 4 <= word_count(x) <= 30 for x in s)
    # every shipped sentence falls in the test region of the hash split (never trained on)
    assert max(_unit_hash(x) for x in s) < 0.1
    with pytest.raises(ValueError, match="wordnet_test"):
        load_shipped("nope")


def test_sentence_dataset():
    ds = SentenceDataset(["a b c d"])
    assert len(ds) == 1 and ds[0] == "a b c d"
    with pytest.raises(ValueError):
        SentenceDataset([])


def test_wordnet_domains_are_the_lexicographer_files(tmp_path):
    _fake_wordnet(tmp_path)
    sentences, domains = load_wordnet_domains(tmp_path)
    assert sentences == load_wordnet_examples(tmp_path)  # the same list, the same order
    assert dict(zip(sentences, domains)) == {"the cat sat on the mat": 3, "she runs to the station every morning": 29,
                                             "he drove very fast indeed": 2}


@pytest.mark.skipif(not (WORDNET_ROOT / "data.noun").is_file(), reason="Debian wordnet-base not installed")
def test_wordnet_domains_cover_the_whole_corpus():
    sentences, domains = load_wordnet_domains()
    assert sentences == load_wordnet_examples()
    assert min(domains) >= 0 and max(domains) <= 44 and len(set(domains)) > 40  # 45 lexicographer files
