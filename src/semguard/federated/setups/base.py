"""What a federation needs from its codec: the per-codec setup objects' base.

A :class:`CodecSetup` says, for one ``--codec``, which settings it accepts (:meth:`CodecSetup.check`),
which examples the clients, the server's root set and the held-out set hold (:meth:`CodecSetup.data`),
which model is trained (:meth:`CodecSetup.codec`) and how the global model is scored
(:meth:`CodecSetup.evaluate`).  :class:`semguard.federated.engine.Federation` and
:func:`semguard.federated.engine.evaluate` only call these; :data:`semguard.federated.setups.SETUPS`
maps each codec name to its setup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.federated.attacks import FLAttack
from semguard.registry import available, build

if TYPE_CHECKING:  # the engine imports the setups, never the other way round at run time
    from semguard.federated.engine import Federation, FLConfig

__all__ = ["EVAL_SEED", "CodecData", "CodecSetup"]

EVAL_SEED = 1234  # the channel draws every evaluation of every round sees


@dataclass(frozen=True)
class CodecData:
    """A run's examples.  ``images`` is the client pool (``pool`` indexes the part the clients share
    out) and ``labels`` what its Dirichlet split is skewed by (class, source photo or semantic
    domain).  ``test_x`` / ``test_y`` is the held-out set, ``root_x`` / ``root_y`` the FLTrust root
    set; ``test_sentences`` the held-out sentences (text only) and ``tokenizer`` the one tokenizer
    every client and the server share (text only)."""

    images: Tensor
    labels: Tensor
    pool: Tensor
    test_x: Tensor
    test_y: Tensor
    root_x: Tensor
    root_y: Tensor
    test_sentences: list[str] = field(default_factory=list)
    tokenizer: Any = None


class CodecSetup:
    """One codec's part of a federation.  ``name``: the ``--codec`` value; ``metrics``: the keys
    :meth:`evaluate` returns (the first is what the publication gate scores); ``options``: the
    :class:`~semguard.federated.engine.FLConfig` fields only this codec reads (``semguard fl`` refuses
    their flags with another codec); ``reconstruct``: a client's target is its example itself (no labels);
    ``per_example``: how DP-SGD gets per-example gradients, ``hooks`` (Opacus' GradSampleModule) or
    ``microbatch`` (one backward per example, for layers Opacus cannot hook)."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    options: ClassVar[tuple[str, ...]] = ()
    reconstruct: ClassVar[bool] = True
    per_example: ClassVar[str] = "hooks"

    def check(self, cfg: FLConfig) -> None:
        """Raise a one-line ``ValueError`` for a setting this codec cannot take."""
        if cfg.attack in available("fl_attack") and type(build("fl_attack", cfg.attack)).poison is not FLAttack.poison:
            raise ValueError(f"--attack {cfg.attack} poisons labels or plants a class trigger; --codec {self.name} "
                             f"takes the model-poisoning and free-riding attacks")

    def data(self, cfg: FLConfig, generator: torch.Generator, images: Tensor | None,
             labels: Tensor | None) -> CodecData:
        """The run's examples, drawn from ``cfg.seed`` (``generator`` is the federation's, seeded with
        it; ``images`` / ``labels`` replace the shipped set where the codec takes them)."""
        raise NotImplementedError

    def codec(self, cfg: FLConfig, data: CodecData) -> SemanticCodec:
        """The initial global model, built from ``cfg.seed``."""
        raise NotImplementedError

    def evaluate(self, fed: Federation, codec: SemanticCodec, generator: torch.Generator) -> dict[str, float]:
        """``metrics`` of ``codec`` (loaded with the global model, in eval mode) on the held-out set
        through ``fed.channel`` at ``fed.cfg.eval_snr_db``; ``generator`` is seeded with
        :data:`EVAL_SEED`."""
        raise NotImplementedError
