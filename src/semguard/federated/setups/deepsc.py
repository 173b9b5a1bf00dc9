"""The text codec's setup: a small DeepSC on WordNet sentences, BLEU-1 (:mod:`semguard.federated.text`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.federated.model import federated_codec
from semguard.federated.setups.base import CodecData, CodecSetup

if TYPE_CHECKING:
    from semguard.federated.engine import Federation, FLConfig

__all__ = ["DeepSCSetup"]


class DeepSCSetup(CodecSetup):
    """``train_sentences`` WordNet training sentences split by semantic domain, root sentences from
    the validation split, held-out ones from the test split, all tokenised by the shipped
    tokenizer.  DeepSC with ``d_model = width`` and ``layers`` per side, no dropout.  DP-SGD takes its
    per-example gradients by microbatches of one (:class:`~semguard.federated.privacy.MicrobatchDPTrainer`)."""

    name = "deepsc"
    metrics = ("bleu1", "token_accuracy")
    options = ("layers", "train_sentences")
    per_example = "microbatch"  # Opacus has no per-example hooks for torch's nn.MultiheadAttention

    def check(self, cfg: FLConfig) -> None:
        from semguard.federated.text import HEADS

        if cfg.width < HEADS or cfg.width % HEADS:
            raise ValueError(f"--width is DeepSC's d_model: a multiple of {HEADS} (its heads), got {cfg.width}")
        if cfg.layers < 1:
            raise ValueError(f"--layers must be >= 1, got {cfg.layers}")
        if cfg.train_sentences < 2 * cfg.clients:
            raise ValueError(f"--train-sentences must be >= 2 per client ({2 * cfg.clients}), got "
                             f"{cfg.train_sentences}")
        super().check(cfg)

    def data(self, cfg: FLConfig, generator: torch.Generator, images: Tensor | None,
             labels: Tensor | None) -> CodecData:
        from semguard.codecs.deepsc import shipped_tokenizer
        from semguard.federated.text import sentence_data

        tok = shipped_tokenizer()  # the same ids on every client
        t = sentence_data(cfg.seed, tok, train_size=cfg.train_sentences, root_size=cfg.root_size,
                          test_size=cfg.test_size)
        return CodecData(images=t.train, labels=t.domain, pool=torch.arange(t.train.shape[0]),
                         test_x=t.test, test_y=t.test, root_x=t.root, root_y=t.root,
                         test_sentences=t.test_sentences, tokenizer=tok)

    def codec(self, cfg: FLConfig, data: CodecData) -> SemanticCodec:
        from semguard.federated.text import deepsc_kwargs, tokenizer_sha256

        tok = data.tokenizer
        codec = federated_codec("deepsc", seed=cfg.seed, vocab_size=tok.vocab_size, tokenizer=tok,
                                **deepsc_kwargs(cfg.width, cfg.layers))
        codec.config["tokenizer_sha256"] = tokenizer_sha256(tok)  # the ids the weights mean
        return codec

    def evaluate(self, fed: Federation, codec: SemanticCodec, generator: torch.Generator) -> dict[str, float]:
        from semguard.federated.text import text_metrics

        return text_metrics(codec, fed.test_x, fed.test_sentences, fed.channel, fed.cfg.eval_snr_db, generator)
