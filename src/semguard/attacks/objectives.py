"""What an attack maximises: one differentiable loss per objective, per sample ``[B]``.

* ``reconstruction`` (image codecs, ``x_hat``): untargeted, the distortion of the decoded image
  against the clean source (``psnr``: ``10 log10 MSE``, so every image counts the same; ``mse``;
  ``ms-ssim``: ``-MS-SSIM``); targeted, minus the distortion to a target image.
* ``task`` (class logits ``[B, K]``): untargeted, cross-entropy of the true label; targeted, minus the
  cross-entropy of the target class (Kang et al.'s semantic noise on a task receiver).  With
  ``task_loss="margin"`` the Carlini-Wagner logit margin instead, capped at ``MARGIN_CAP`` (targeted:
  ``z_t - max_{j != t} z_j``; untargeted: ``max_{j != y} z_j - z_y``), which stops pushing a sample
  once it is decided as wanted and spends the steps on the others.  ``task_loss="dlr"``: the
  difference-of-logits ratio of Croce & Hein (2020), the margin divided by the spread of the top
  logits, so it does not change when the logits are rescaled (untargeted:
  ``-(z_y - max_{j != y} z_j) / (z_(1) - z_(3))``; targeted:
  ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)``, ``z_(k)`` the k-th largest logit).
* ``semantic`` (token logits ``[B, T, V]``, DeepSC): the token cross-entropy against the sent sentence,
  the differentiable surrogate of BLEU; targeted, minus the cross-entropy to a target sentence.  With
  ``task_loss="margin"`` the logit margin at every real position, each capped at ``MARGIN_CAP`` and
  averaged (untargeted: ``max_{j != y_t} z_tj - z_t,y_t``; targeted: ``z_t,t_t - max_{j != t_t} z_tj``):
  a position already wrong (or already the target's token) stops pulling, so the steps go to the
  positions still decoded as sent, which is what BLEU and exact match count.
* ``task_loss="prob"`` (task and semantic): the soft error probability, ``1 - softmax(z)_y`` per
  decision (untargeted; for text averaged over the real positions, the soft token error rate) or
  ``softmax(z)_t`` (targeted).  Bounded in [0, 1], its gradient ``p_y`` times the softmax's is largest
  at decisions near their boundary and vanishes at those already flipped and those far from it: the
  objective of a perturbation that must flip as many decisions as it can without seeing them (the
  universal block on DeepSC, where the cross-entropy, unbounded, rewards wrecking one token slot).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor

from semguard.attacks.threat import OBJECTIVES
from semguard.codecs._text_tokenizer import PAD_ID
from semguard.codecs.base import SemanticCodec

__all__ = ["MARGIN_CAP", "RECON_LOSSES", "TASK_LOSSES", "attack_damage", "attack_loss", "attack_success",
           "check_objective", "check_text_target", "codec_objective", "dlr_loss", "logit_margin", "token_margin"]

RECON_LOSSES = ("psnr", "mse", "ms-ssim")
TASK_LOSSES = ("ce", "margin", "dlr", "embedding", "prob")  # dlr: task only; embedding: semantic only
MARGIN_CAP = 5.0
_PAD = PAD_ID


def codec_objective(codec: SemanticCodec) -> str:
    """The objective that fits ``codec``'s output: reconstruction, task or semantic."""
    if codec.output_key == "x_hat":
        return "reconstruction"
    if hasattr(codec, "tokenize") or getattr(codec, "max_tokens", None) is not None:
        return "semantic"
    return "task"


def check_objective(objective: str, codec: SemanticCodec) -> str:
    """``objective`` if it fits ``codec``, else a one-line ValueError."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    fits = codec_objective(codec)
    if objective != fits:
        raise ValueError(f"objective {objective!r} does not fit {type(codec).__name__} (output "
                         f"{codec.output_key!r}); expected objective {fits!r}")
    return objective


def _distortion(x_hat: Tensor, ref: Tensor, loss: str) -> Tensor:
    if loss == "mse":
        return (x_hat - ref).square().flatten(1).mean(1)
    if loss == "psnr":
        return 10.0 * torch.log10((x_hat - ref).square().flatten(1).mean(1).clamp_min(1e-10))
    if loss == "ms-ssim":
        from pytorch_msssim import ms_ssim
        return -ms_ssim(x_hat.clamp(0, 1), ref, data_range=1.0, size_average=False)
    raise ValueError(f"reconstruction loss must be one of {', '.join(RECON_LOSSES)}, got {loss!r}")


def logit_margin(logits: Tensor, cls: Tensor) -> Tensor:
    """``z_cls - max_{j != cls} z_j`` per sample ``[B]`` (positive: decided as ``cls``)."""
    z = logits.gather(1, cls[:, None])[:, 0]
    others = logits.masked_fill(nnf.one_hot(cls, logits.shape[1]).bool(), float("-inf"))
    return z - others.max(1).values


def dlr_loss(logits: Tensor, labels: Tensor, target: Tensor | None = None) -> Tensor:
    """The difference-of-logits ratio ``[B]`` to maximise (Croce & Hein, 2020, eqs. 6 and 7); see the
    module docstring.  Untargeted needs at least 3 classes, targeted at least 4."""
    k = logits.shape[1]
    if k < (3 if target is None else 4):
        raise ValueError(f"task_loss 'dlr' needs at least {3 if target is None else 4} classes, got {k}")
    top = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, labels[:, None])[:, 0]
    if target is None:
        return -logit_margin(logits, labels) / (top[:, 0] - top[:, 2] + 1e-12)
    z_t = logits.gather(1, target[:, None])[:, 0]
    return -(z_y - z_t) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)


def attack_success(objective: str, output: Tensor, *, labels: Tensor | None = None,
                   target: Tensor | None = None) -> Tensor | None:
    """Per sample ``[B]`` bool: the attack has what it wants (``task``: decided as ``target``, or not
    as ``labels`` when untargeted); None for the objectives without a decision (reconstruction,
    semantic), where the loss itself ranks the iterates."""
    if objective != "task":
        return None
    pred = output.argmax(1)
    if target is not None:
        return pred == target
    if labels is None:
        raise ValueError("labels: the task objective needs the true classes [B] (or a target)")
    return pred != labels


def attack_damage(objective: str, output: Tensor, source: Tensor, *, labels: Tensor | None = None,
                  recon_loss: str = "psnr") -> Tensor:
    """What an untargeted attack achieved, per sample ``[B]``, higher worse for Bob; what the universal
    attack's restarts are ranked by (on the attacker's own sources, never the evaluated ones).

    * ``semantic``: the token error rate, the fraction of real positions whose ``argmax`` is not the
      sent token (what BLEU-1 counts for DeepSC, which decodes exactly as many tokens as were sent);
    * ``task``: 1 where the decided class is not ``labels``, else 0;
    * ``reconstruction``: the untargeted loss (the distortion ``recon_loss``).
    """
    if objective == "semantic":
        if output.dim() != 3 or source.shape != output.shape[:2]:
            raise ValueError(f"semantic damage needs token logits [B, T, V] and ids [B, T], got "
                             f"{tuple(output.shape)} and {tuple(source.shape)}")
        mask = (source != _PAD).float()
        wrong = (output.argmax(-1) != source).float()
        return (wrong * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if objective == "task":
        hit = attack_success("task", output, labels=labels)
        assert hit is not None
        return hit.float()
    return attack_loss(objective, output, source, recon_loss=recon_loss)


def token_margin(logits: Tensor, ids: Tensor) -> Tensor:
    """``z_t,ids_t - max_{j != ids_t} z_tj`` at every position ``[B, T]`` of token logits ``[B, T, V]``."""
    z = logits.gather(2, ids.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(2, ids.unsqueeze(-1), float("-inf"))
    return z - others.amax(2)


def check_text_target(target: Tensor, source: Tensor, vocab_size: int) -> Tensor:
    """``target`` if it is a sentence Bob can be made to read instead of ``source``, else a one-line
    ValueError: token ids ``LongTensor`` of the source's shape, in ``[2, vocab_size)`` (no unknown
    word) wherever the source has a token and padding wherever it has none (Bob decodes exactly as
    many tokens as were sent)."""
    if target.shape != source.shape or target.dtype != torch.long:
        raise ValueError(f"target must be token ids LongTensor{list(source.shape)} (the sent sentences' shape), "
                         f"got {target.dtype} {tuple(target.shape)}")
    real = source != _PAD
    n_src, n_tgt = real.sum(1), (target != _PAD).sum(1)
    bad = ((target != _PAD) != real).any(1).nonzero().flatten()
    if bad.numel():
        b = int(bad[0])
        raise ValueError(f"target: sentence {b} has {int(n_tgt[b])} tokens where the sent one has {int(n_src[b])}; "
                         f"Bob decodes exactly as many tokens as were sent, so the target needs the same length")
    ids = target[real]
    if ids.numel() and (ids.min() < 2 or ids.max() >= vocab_size):
        b = int(((target < 2) & real | (target >= vocab_size)).any(1).nonzero().flatten()[0])
        raise ValueError(f"target: sentence {b} has a token outside the codec's vocabulary (ids 2..{vocab_size - 1}; "
                         f"1 is the unknown word)")
    return target


def attack_loss(objective: str, output: Tensor, source: Tensor, *, labels: Tensor | None = None,
                target: Tensor | None = None, recon_loss: str = "psnr", task_loss: str = "ce",
                embedder: object | None = None) -> Tensor:
    """Per-sample loss ``[B]`` the attacker maximises.

    Args:
        objective: one of :data:`OBJECTIVES`.
        output: the decoder's output (``x_hat [B, C, H, W]``, logits ``[B, K]`` or ``[B, T, V]``).
        source: the clean source (images, or token ids ``[B, T]`` for ``semantic``).
        labels: true classes ``[B]`` (``task``, untargeted).
        target: target image, target classes ``[B]`` or target token ids ``[B, T]`` (targeted).
        recon_loss: ``psnr``, ``mse`` or ``ms-ssim`` (``reconstruction`` only).
        task_loss: ``ce``, ``margin`` or ``prob`` (``task`` and ``semantic``), ``dlr`` (``task`` only; targeted
            ``dlr`` also reads ``labels``), ``embedding`` (``semantic`` only).
        embedder: the :class:`~semguard.attacks.sentence.SoftSentenceEmbedder` of ``embedding``.
    """
    if objective == "reconstruction":
        if target is not None:
            if target.shape != output.shape:
                raise ValueError(f"target image must have the output's shape {tuple(output.shape)}, "
                                 f"got {tuple(target.shape)}")
            return -_distortion(output, target, recon_loss)
        return _distortion(output, source, recon_loss)
    if objective == "task":
        if output.dim() != 2:
            raise ValueError(f"task objective needs class logits [B, K], got {tuple(output.shape)}")
        if task_loss not in ("ce", "margin", "dlr", "prob"):
            raise ValueError(f"task_loss must be one of ce, margin, dlr, prob for the task objective, "
                             f"got {task_loss!r}")
        if target is not None:
            t = _classes(target, output, "target")
            if task_loss == "dlr":
                if labels is None:
                    raise ValueError("labels: the targeted dlr loss needs the true classes [B] beside the target")
                return dlr_loss(output, _classes(labels, output, "labels"), t)
            if task_loss == "margin":
                return logit_margin(output, t).clamp(max=MARGIN_CAP)
            if task_loss == "prob":
                return output.softmax(1).gather(1, t[:, None])[:, 0]
            return -nnf.cross_entropy(output, t, reduction="none")
        if labels is None:
            raise ValueError("labels: the task objective needs the true classes [B] (or a target)")
        y = _classes(labels, output, "labels")
        if task_loss == "dlr":
            return dlr_loss(output, y)
        if task_loss == "margin":
            return (-logit_margin(output, y)).clamp(max=MARGIN_CAP)
        if task_loss == "prob":
            return 1.0 - output.softmax(1).gather(1, y[:, None])[:, 0]
        return nnf.cross_entropy(output, y, reduction="none")
    if objective == "semantic":
        if output.dim() != 3:
            raise ValueError(f"semantic objective needs token logits [B, T, V], got {tuple(output.shape)}")
        if task_loss not in ("ce", "margin", "embedding", "prob"):
            raise ValueError(f"task_loss must be one of ce, margin, embedding, prob for the semantic objective, "
                             f"got {task_loss!r}")
        if source.shape != output.shape[:2] or source.dtype != torch.long:
            raise ValueError(f"source must be token ids LongTensor{list(output.shape[:2])}, got {source.dtype} "
                             f"{tuple(source.shape)}")
        ref = source if target is None else check_text_target(target, source, output.shape[2])
        if task_loss == "embedding":
            if embedder is None:
                raise ValueError("embedder: task_loss='embedding' needs a SoftSentenceEmbedder")
            from semguard.attacks.sentence import embedding_loss
            return embedding_loss(embedder, output, source, target)  # type: ignore[arg-type]
        mask = (source != _PAD).float()
        if task_loss == "margin":
            m = token_margin(output, ref)
            per = m.clamp(max=MARGIN_CAP) if target is not None else (-m).clamp(max=MARGIN_CAP)
            return (per * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        if task_loss == "prob":
            p_ref = output.softmax(-1).gather(2, ref.unsqueeze(-1)).squeeze(-1)
            per = p_ref if target is not None else 1.0 - p_ref
            return (per * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        ce = nnf.cross_entropy(output.transpose(1, 2), ref, reduction="none")
        ce = (ce * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return -ce if target is not None else ce
    raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def _classes(t: Tensor, logits: Tensor, what: str) -> Tensor:
    if t.shape != (logits.shape[0],) or t.dtype != torch.long:
        raise ValueError(f"{what} must be class ids LongTensor[{logits.shape[0]}], got {t.dtype} {tuple(t.shape)}")
    if t.numel() and (t.min() < 0 or t.max() >= logits.shape[1]):
        raise ValueError(f"{what} must be in [0, {logits.shape[1]})")
    return t
