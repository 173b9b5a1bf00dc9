"""Text training through the shared loop: TextTask maths, corpus registration, the CLI round trip."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from semguard.baselines.text_link import HuffmanCode, TextDigitalLink, shipped_huffman
from semguard.channels import AWGN
from semguard.cli import train_cmd
from semguard.codecs._text_tokenizer import PAD_ID, TextTokenizer, train_wordpiece
from semguard.codecs.deepsc import DeepSC, TOKENIZER_FILE
from semguard.codecs.zoo import load_weights
from semguard.data.text import (TEXT_CORPORA, TextCorpus, split_sentences, text_corpus)
from semguard.registry import available, build
from semguard.training.tasks import TextTask, masked_token_ce, token_hits

torch.set_num_threads(1)

SUBJECTS = ["the cat", "a dog", "my aunt", "the old farmer", "our teacher", "a small bird"]
VERBS = ["watched", "followed", "painted", "found", "called", "liked"]
OBJECTS = ["the river", "a red kite", "the market", "his neighbour", "the quiet park", "an old book"]
SENTENCES = [f"{s} {v} {o} today" for s in SUBJECTS for v in VERBS for o in OBJECTS]  # 216, 5-7 words


@pytest.fixture(scope="module")
def wordnet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wordnet")
    for i, pos in enumerate(("noun", "verb", "adj", "adv")):
        lines = ["  licence header line | not an example"] + [
            f'{k:08d} 03 n 01 w 0 000 | a gloss; "{t}"' for k, t in enumerate(SENTENCES[i::4])]
        (root / f"data.{pos}").write_text("\n".join(lines) + "\n")
    return root


def test_masked_ce_and_hits_by_hand():
    tokens = torch.tensor([[2, 3, PAD_ID], [3, PAD_ID, PAD_ID]])
    logits = torch.zeros(2, 3, 4)
    logits[0, 0, 2] = math.log(3.0)  # p(2) = 3/6 at the first slot -> CE = log 2
    logits[0, 2, :] = 100.0  # padding slot: must not count
    # real slots: (0,0) CE log 2, (0,1) and (1,0) uniform CE log 4
    expected = (math.log(2.0) + 2 * math.log(4.0)) / 3
    assert masked_token_ce(logits, tokens).item() == pytest.approx(expected, rel=1e-6)
    logits[1, 0, 3] = 5.0  # second sentence decoded right; (0,1) argmax = 0 (ties) is wrong
    assert token_hits(logits, tokens) == (2, 3)


def test_text_task_batches_are_trimmed_training_rows():
    train = torch.tensor([[5, 6, 7, 0, 0, 0], [8, 9, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0]])
    task = TextTask(train, train[:2])
    g = torch.Generator().manual_seed(3)
    x, y = task.batch(64, g)
    assert x is y and x.shape[0] == 64 and x.shape[1] == 3  # all three rows drawn: longest has 3
    rows = {tuple(r) for r in train[:, :3].tolist()}
    assert {tuple(r) for r in x.tolist()} == rows
    g2 = torch.Generator().manual_seed(3)
    assert torch.equal(task.batch(64, g2)[0], x)  # the loop's generator makes batches reproducible


def test_text_task_rejects_bad_ids():
    good = torch.tensor([[3, 4]])
    with pytest.raises(ValueError, match="train_ids"):
        TextTask(good.float(), good)
    with pytest.raises(ValueError, match="val_ids: row 1 has no real token"):
        TextTask(good, torch.tensor([[3, 4], [0, 0]]))


def test_text_task_validate_is_token_accuracy():
    class Echo(torch.nn.Module):  # decodes the true token everywhere except id 7
        def forward(self, x, channel, snr, generator=None):
            logits = torch.nn.functional.one_hot(x, 10).float()
            logits[..., 0] += (x == 7).float() * 2  # wrong answer (0) for id 7
            return {"logits": logits}

    val = torch.tensor([[7, 2, 3], [4, 0, 0], [7, 7, 0]])  # 6 real tokens, 3 are id 7
    task = TextTask(val, val, val_batch=2)
    acc = task.validate(Echo(), AWGN(), 10.0, torch.device("cpu"), torch.Generator())
    assert acc == pytest.approx(3 / 6)


def test_text_corpora_registered_in_dataset_family(wordnet_root, monkeypatch):
    assert {"wordnet", "europarl"} <= set(TEXT_CORPORA) <= set(available("dataset"))
    corpus = build("dataset", "wordnet", root=wordnet_root)
    assert isinstance(corpus, TextCorpus) and corpus.name == "wordnet"
    ref = split_sentences(SENTENCES)  # same hash split whatever the file order
    for part in ("train", "val", "test"):
        assert sorted(getattr(corpus.split, part)) == sorted(getattr(ref, part))
    assert sorted(corpus.split.train + corpus.split.val + corpus.split.test) == sorted(SENTENCES)
    monkeypatch.setenv("SEMGUARD_WORDNET", str(wordnet_root))
    assert text_corpus("wordnet").split == corpus.split  # env var sets the root
    europarl = wordnet_root / "ep.en"
    europarl.write_text("<CHAPTER ID=1>\nResumption of the session today .\nToo short\n")
    monkeypatch.setenv("SEMGUARD_EUROPARL", str(europarl))
    ep = text_corpus("europarl")
    assert ep.name == "europarl"
    assert ep.split.train + ep.split.val + ep.split.test == ["resumption of the session today ."]
    assert text_corpus(europarl).split == ep.split  # a path works like a name


def test_text_corpus_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown text corpus 'klingon'.*europarl, wordnet"):
        text_corpus("klingon")
    with pytest.raises(ValueError, match="'photos' is not a text corpus"):
        text_corpus("photos")
    monkeypatch.setenv("SEMGUARD_WORDNET", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        text_corpus("wordnet")
    monkeypatch.delenv("SEMGUARD_EUROPARL", raising=False)
    with pytest.raises(FileNotFoundError, match="SEMGUARD_EUROPARL"):
        build("dataset", "europarl")


def test_text_ldpc_registered_with_shipped_huffman():
    link = build("baseline", "text_ldpc")
    assert isinstance(link, TextDigitalLink) and link.huffman == shipped_huffman()
    code = link.huffman.codes
    assert len(code[" "]) <= len(code["e"]) < len(code["q"])  # frequent characters get short words
    r = link.transmit(["the dog barked at the moon ."], AWGN(), 30.0, torch.tensor([80]),
                      generator=torch.Generator().manual_seed(0))
    assert r.sentences == ["the dog barked at the moon ."] and bool(r.ok.all())
    assert build("baseline", "text_ldpc", source_coding="utf8").huffman is None
    own = HuffmanCode.fit(["abc abc"])
    assert build("baseline", "text_ldpc", huffman=own).huffman is own


def _train_args(tmp: Path, root: Path, steps: int, **over: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers())
    argv = ["train", "deepsc", "--data", "wordnet", "--tokenizer", "train", "--vocab", "80", "--width", "16",
            "--steps", str(steps), "--batch", "4", "--val-every", "2", "--ckpt-every", "2", "--val-snr", "5",
            "--out", str(tmp / "run"), "--threads", "1", "--no-progress", "--export", str(tmp / "deepsc.safetensors")]
    return parser.parse_args(argv)


def test_cli_trains_resumes_and_exports_a_loadable_deepsc(tmp_path, wordnet_root, monkeypatch):
    monkeypatch.setenv("SEMGUARD_WORDNET", str(wordnet_root))
    assert train_cmd.run(_train_args(tmp_path, wordnet_root, 2)) == 0
    tok_file = tmp_path / "run" / TOKENIZER_FILE
    first_tok = tok_file.read_text()
    assert train_cmd.run(_train_args(tmp_path, wordnet_root, 3)) == 0  # resumes at step 2
    assert tok_file.read_text() == first_tok  # the saved vocabulary is reused, not retrained
    hist = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [2, 3]
    for h in hist:
        assert 0.0 <= h["awgn@5dB"] <= 1.0 and "rayleigh@5dB" in h
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["step"] == 3

    export = tmp_path / "deepsc.safetensors"
    with safe_open(str(export), framework="pt") as f:
        meta = f.metadata()
    assert meta["codec"] == "deepsc" and meta["trained_steps"] == "3" and meta["tokenizer"] == TOKENIZER_FILE
    codec = load_weights(export)
    assert isinstance(codec, DeepSC) and codec.config["d_model"] == 16 and not codec.training
    tok = TextTokenizer.from_file(tmp_path / TOKENIZER_FILE)
    assert tok.vocab_size == codec.config["vocab_size"]
    trained = DeepSC(**codec.config)
    trained.load_state_dict({k: v for k, v in state["model"].items()})
    trained.eval()
    ids = tok.encode(["a dog found the river today", "my aunt liked an old book today"])
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    out = codec(ids, AWGN(), 10.0, generator=g1)["logits"]
    assert out.shape == (2, ids.shape[1], tok.vocab_size) and torch.isfinite(out).all()
    assert torch.allclose(out, trained(ids, AWGN(), 10.0, generator=g2)["logits"], atol=1e-5)
    same = DeepSC.from_pretrained(tmp_path)  # deepsc.safetensors + deepsc-tokenizer.json in one folder
    assert same.tokenizer.to_str() == tok.to_str()


def test_cli_rejects_image_options_and_foreign_tokenizer(tmp_path, wordnet_root, monkeypatch):
    monkeypatch.setenv("SEMGUARD_WORDNET", str(wordnet_root))
    args = _train_args(tmp_path, wordnet_root, 1)
    args.cbr = 0.1
    with pytest.raises(ValueError, match="--cbr does not apply to deepsc"):
        train_cmd.run(args)
    other = tmp_path / "other.json"
    train_wordpiece(["zebra yak quokka walrus"], 40).save(other)
    (tmp_path / "run").mkdir()
    train_wordpiece(["the cat sat on the mat"], 40).save(tmp_path / "run" / TOKENIZER_FILE)
    args = _train_args(tmp_path, wordnet_root, 1)
    args.tokenizer = str(other)
    with pytest.raises(ValueError, match="differs from .* run being resumed"):
        train_cmd.run(args)


def test_cli_symbols_per_token_sets_the_channel_uses_of_the_trained_deepsc(tmp_path, wordnet_root, monkeypatch):
    monkeypatch.setenv("SEMGUARD_WORDNET", str(wordnet_root))
    args = _train_args(tmp_path, wordnet_root, 1)
    args.symbols_per_token = 3
    assert train_cmd.run(args) == 0
    codec = load_weights(tmp_path / "deepsc.safetensors")
    assert codec.config["symbols_per_token"] == 3 and codec.config["d_model"] == 16
    ids = TextTokenizer.from_file(tmp_path / TOKENIZER_FILE).encode(["a dog found the river today", "the cat"])
    x = codec.encode(ids, 10.0)
    L = codec.lengths(ids)
    assert x.shape == (2, 3 * ids.shape[1]) and torch.equal(codec.channel_uses(ids), 3 * L)
    for b in range(2):  # unit power per channel use over the real slots, silence on the padding
        assert x[b, :3 * L[b]].abs().square().mean().item() == pytest.approx(1.0, rel=1e-4)
        assert not x[b, 3 * L[b]:].abs().any()
