"""The studies above the families: the poisoning gate's canary score, computed over a Link, and the
desync study's pieces (crops from data/, the one training step)."""

from __future__ import annotations

import copy

import pytest
import torch

from semguard.codecs.deepjscc import DeepJSCC, adjscc
from semguard.evaluation.studies.desync import canary_images, link_psnr, train_steps, training_images
from semguard.evaluation.studies.poisoning import canary_fidelity
from semguard.knowledge import KnowledgeBase, PoisoningRejected, generate_key, save_codec
from semguard.knowledge.poison import make_gate


def test_canary_gate_rejects_a_broken_decoder_and_passes_a_fine_tune(tmp_path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    codec = train_steps(adjscc(cbr=1 / 12, width=8), training_images(), 40, seed=1)
    canary = canary_images(n=4)
    key = generate_key()
    kb = KnowledgeBase.init(tmp_path / "kb.db", key)
    save_codec(kb, key, "c", codec)
    gate = make_gate("c", DeepJSCC, canary_fidelity(canary), max_drop_db=1.0)
    tuned = train_steps(copy.deepcopy(codec), training_images(), 5, seed=2)
    save_codec(kb, key, "c", tuned, gate=gate)                              # a small fine-tune passes
    broken = copy.deepcopy(tuned)
    with torch.no_grad():
        broken.dec_out.weight.neg_()
    drop = canary_fidelity(canary)(tuned) - canary_fidelity(canary)(broken)
    assert drop > 1.0
    with pytest.raises(PoisoningRejected, match="canary PSNR dropped"):
        save_codec(kb, key, "c", broken, gate=gate)


def test_link_psnr_of_a_codec_with_itself_is_its_canary_score() -> None:
    torch.manual_seed(0)
    codec = adjscc(cbr=1 / 12, width=8).eval()
    imgs = canary_images(n=2)
    assert canary_fidelity(imgs)(codec) == link_psnr(codec, codec, imgs)
    assert canary_images(n=2).shape == (2, 3, 32, 32) and torch.equal(canary_images(n=2), imgs)
