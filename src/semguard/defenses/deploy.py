"""Every link defence of the registry deployed the one way evaluation code uses it: fitted on reference
sources disjoint from the evaluated ones, the deployed link, and the two attacks its robustness is
reported against.

* **non-adaptive**: the attack crafted on the *undefended* link, its perturbation sent unchanged
  through the defended one (the perturbation of the input, or the interference at the receiver);
* **adaptive**: the attack that knows the defence (:func:`adaptive_attacks`):

  - ``blur``: the attack differentiates through the blur with the identity on the quantiser's backward
    pass (BPDA, ``BlurDefense.attacker_view``) and, for PGD on the input, averages over the random
    kernel width (EOT, ``BlurDefense.adaptive_attack``); its perturbation is sent through the deployed
    link;
  - ``keyed-spread``: PGD averaging every step over guessed keys (:class:`KeyEOTPGD`), any other
    attack crafted through :class:`GuessedKeyLink` (a fresh key per call) and sent with the true key, and on
    the channel the key-agnostic re-radiation (:class:`CorrelatedJammer`); each builds its guessed-key
    links from the deployed one, so with ``keyed_repeat`` copies they attack the repeated block;
  - the receivers (``blanking``, ``interference-lmmse``, ``pilot-check``): the attack run white-box
    through the receiver itself (they are differentiable; ``pilot`` becomes the check-aware pilot attack).

``residual-detector``, ``input-detector``, ``smoothing`` and ``median-smoothing`` do not change a link's output (they raise
alarms, or certify a decision): :func:`deploy` refuses them with the bench that measures them.  A
defence that does not apply to a codec or a channel is refused with one line
(:class:`DefenseNotApplicable`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import Attack, AttackResult
from semguard.attacks.pgd import PGD
from semguard.attacks.pilot import PilotAttack
from semguard.link import Link
from semguard.registry import available, build

__all__ = [
    "LINK_DEFENSES",
    "NOT_LINK_DEFENSES",
    "DefenseNotApplicable",
    "Deployment",
    "Replayed",
    "adaptive_attacks",
    "deploy",
    "keyed_pilots",
    "non_adaptive",
    "replay",
    "session_key",
]

#: the registered defences that wrap a link (their output changes under attack)
LINK_DEFENSES = ("blur", "blanking", "interference-lmmse", "keyed-spread", "pilot-check")
#: the others, with where their figures are measured
NOT_LINK_DEFENSES = {
    "residual-detector": "a detector raises alarms and leaves the output as it is; bench/defenses.py measures it",
    "input-detector": "a detector raises alarms and leaves the output as it is; bench/defenses_reception.py measures it",
    "smoothing": "a certificate, not a link defence; see semguard certify and bench/defenses.py",
    "median-smoothing": ("a certified PSNR bound of a smoothed receiver, not a link defence; see semguard certify "
                         "--method median and bench/certify_psnr.py"),
}
#: the blur deployed here: random width and 8-bit quantisation, so the adaptive attack needs BPDA and EOT
BLUR = {"sigma": (0.5, 1.5), "quantize": True, "eot": 4}
#: guessed keys per step of the adaptive PGD against keyed spreading
KEYS = 8


def keyed_pilots(n: int) -> int:
    """Keyed spreading's pilots for a block of ``n`` symbols: ``n / 16`` within [16, 512] (512 on the
    default image codec's 32768 symbols, as measured in bench/defenses_keyed.py; a 16-symbol task
    block still gets 16, so its gain estimate holds, at twice the channel uses)."""
    return max(16, min(512, n // 16))


class DefenseNotApplicable(ValueError):
    """A defence that does not apply to this codec, channel or command (one line)."""


def session_key(seed: int) -> bytes:
    """The session key of an evaluated keyed link: derived from the run's seed (reproducible; never
    shown), as ``semguard run``'s secrecy cells derive theirs."""
    return hashlib.sha256(f"semguard evaluation session key|{int(seed)}".encode()).digest()


@dataclass
class Deployment:
    """A fitted defence on one link.

    Attributes:
        name: the registry name.
        defense: the fitted defence object.
        undefended: the link as it was.
        deployed: the defended link (what Bob runs).
        view: what the adaptive attacker differentiates through (the deployed link, or the blur's BPDA view).
        config: the defence's settings (no key material).
    """

    name: str
    defense: Any
    undefended: Link
    deployed: Link
    view: Link
    config: dict[str, Any] = field(default_factory=dict)


def _refuse(name: str, label: str, reason: str) -> DefenseNotApplicable:
    return DefenseNotApplicable(f"--defense {name} does not apply to {label}: {reason}")


def deploy(name: str, link: Link, references: Tensor, snr_db: float, *, label: str = "this codec",
           seed: int = 0, keyed_repeat: int = 1) -> Deployment:
    """Fit defence ``name`` on ``references`` (sources never evaluated) for ``link`` at ``snr_db``.

    ``keyed_repeat``: for ``keyed-spread``, the copies of ``[x, pilots]`` sent inside one spreading and
    combined at the receiver (``KeyedSpreadDefense(repeat=...)``: ``keyed_repeat * (n + pilots)`` channel
    uses a block, :func:`keyed_pilots` pilots per copy; 1, the default, is the defence as before, bit for
    bit).  The adaptive attacks then run through that repeated link (:func:`adaptive_attacks` builds them
    from the deployed link).  Any other value with another defence is refused.

    Raises:
        DefenseNotApplicable: ``name`` does not apply to the codec (``label`` in the message), the
            channel, or is not a link defence; ValueError for a name not registered.
    """
    if name in NOT_LINK_DEFENSES:
        raise _refuse(name, "semguard attack", NOT_LINK_DEFENSES[name])
    if name not in LINK_DEFENSES:
        raise ValueError(f"--defense {name!r}: choose from {', '.join(LINK_DEFENSES)} "
                         f"(registered: {', '.join(available('defense'))})")
    from semguard.defenses.keyed_spread import check_repeat
    try:
        keyed_repeat = check_repeat(keyed_repeat)
    except ValueError as e:
        raise ValueError(f"keyed_repeat: {e}") from None
    if keyed_repeat != 1 and name != "keyed-spread":
        raise ValueError(f"keyed_repeat: copies of the block are a keyed-spread option, not one of --defense {name}")
    codec = link.codec
    fading = bool(getattr(link.channel, "fading", False))
    try:
        if name == "blur":
            d = build("defense", "blur", seed=seed, **BLUR)
            return Deployment(name, d, link, d.wrap(link), d.attacker_view(link),
                              {"sigma": list(BLUR["sigma"]), "quantize": BLUR["quantize"], "eot": BLUR["eot"]})
        if name == "keyed-spread":
            n = link.n_symbols(tuple(references.shape[1:]))
            d = build("defense", "keyed-spread", key=session_key(seed), pilots=keyed_pilots(n), repeat=keyed_repeat)
            dl = d.wrap(link)
            return Deployment(name, d, link, dl, dl, {"pilots": d.pilots, "pilot_overhead": d.pilots / n,
                                                      "keys_per_step": KEYS, "repeat": d.repeat,
                                                      "channel_uses": d.repeat * (n + d.pilots),
                                                      "undefended_channel_uses": n})
        if name == "blanking":
            if fading:
                raise _refuse(name, label, "it is fitted to equalised AWGN blocks; use --channel awgn")
            d = build("defense", "blanking").fit(codec, references, snr_db)
            dl = d.wrap(link)
            return Deployment(name, d, link, dl, dl, {"threshold": d.threshold})
        if name == "interference-lmmse":
            d = build("defense", "interference-lmmse").fit(link, references, snr_db, seed=seed)
            dl = d.wrap(link)
            return Deployment(name, d, link, dl, dl, {"chunk": d.chunk, "z": d.z, "rel": d.rel})
        # pilot-check
        if not fading or getattr(link.channel, "csi", None) != "estimated":
            raise _refuse(name, label, "it checks pilots of a fading channel; use --channel rayleigh")
        d = build("defense", "pilot-check").fit(link, references, snr_db, seed=seed)
        dl = d.wrap(link)
        return Deployment(name, d, link, dl, dl, {"false_alarm": d.false_alarm, "threshold": d.threshold})
    except DefenseNotApplicable:
        raise
    except (ValueError, TypeError) as e:  # the defence's own one-line refusal (no images, real symbols...)
        raise _refuse(name, label, str(e).splitlines()[0]) from None


def replay(link: Link, source: Tensor, snr_db: Tensor | float, result: AttackResult,
           generator: torch.Generator | None) -> dict[str, Any]:
    """``result``'s perturbation sent unchanged through ``link``: the perturbed input, or the same
    interference at the receiver (zero on symbols ``link`` sends beyond the attacked link's, e.g. the
    keyed spreading's pilots)."""
    surface = result.threat_model.surface
    with torch.no_grad():
        if surface == "input":
            return link((source + result.perturbation).clamp(0, 1), snr_db, generator=generator)
        if surface == "channel":
            intf = result.link["interference"]
            n = link.n_symbols(tuple(source.shape[1:]))
            if intf.shape[1] < n:
                intf = torch.cat([intf, intf.new_zeros(intf.shape[0], n - intf.shape[1])], 1)
            return link(source, snr_db, generator=generator, interference=intf)
    raise ValueError(f"replay: a {surface} perturbation is not sent through another link here "
                     "(input and channel surfaces only)")


class Replayed:
    """``inner`` crafted on ``on`` and its perturbation :func:`replay`-ed through the link it is called with
    (an :class:`Attack` as :func:`~semguard.attacks.evaluate.robust_fidelity` calls it)."""

    def __init__(self, inner: Attack, on: Link, crafted_on: str) -> None:
        self.inner, self.on, self.crafted_on = inner, on, crafted_on
        self.name = inner.name

    def __getattr__(self, key: str) -> Any:  # steps, restarts, eot, fit_seconds... of the inner attack
        if key in ("inner", "on", "crafted_on", "name"):
            raise AttributeError(key)
        return getattr(self.inner, key)

    def __call__(self, link: Link, source: Tensor, snr_db: Tensor | float, *, labels: Tensor | None = None,
                 target: Tensor | None = None, generator: torch.Generator | None = None) -> AttackResult:
        again = None
        if generator is not None:
            again = torch.Generator()
            again.set_state(generator.get_state())
        r = self.inner(self.on, source, snr_db, labels=labels, target=target, generator=generator)
        out = replay(link, source, snr_db, r, again)
        return dataclasses.replace(r, output=out["output"].detach(), link=out,
                                   config={**r.config, "crafted_on": self.crafted_on})


def non_adaptive(dep: Deployment, base: Attack) -> Replayed:
    """``base`` crafted on the undefended link, sent through the defended one."""
    return Replayed(base, dep.undefended, "undefended link (non-adaptive)")


def _pgd_kwargs(base: PGD) -> dict[str, Any]:
    c = base.config()
    kw = {k: c[k] for k in ("surface", "norm", "objective", "targeted", "recon_loss", "task_loss",
                            "attacker_fading", "seed", "steps", "random_start", "restarts", "channel_known",
                            "knows", "eot")}
    kw["alpha"] = base.alpha
    if base.surface == "input":
        kw["eps"] = base.budget
    else:
        kw["psr_db"], kw["full_power"] = base.budget, base.exact
    return kw


def adaptive_attacks(dep: Deployment, base: Attack) -> list[tuple[str, Any]]:
    """``[(label, attack)]``: the attacks that know ``dep``'s defence, built from ``base`` (same surface,
    budget, steps and seed); each is called with ``dep.deployed`` (see the module)."""
    exact_pgd = type(base) is PGD
    if dep.name == "blur":
        atk = dep.defense.adaptive_attack(base) if exact_pgd and base.surface == "input" else base
        label = "bpda+eot" if atk is not base and atk.eot > 1 else "bpda"
        return [(label, Replayed(atk, dep.view, f"blur's BPDA view ({label})"))]
    if dep.name == "keyed-spread":
        from semguard.defenses.keyed_attacks import (
            CorrelatedJammer,
            GuessedKeyLink,
            KeyEOTPGD,
        )
        if base.name == "gaussian":  # noise aims at nothing: the key changes nothing for it
            return [("as-is", base)]
        out: list[tuple[str, Any]] = []
        if exact_pgd and base.surface != "input":
            out.append(("key-eot", KeyEOTPGD(keys=KEYS, **_pgd_kwargs(base))))
        else:
            rng = torch.Generator().manual_seed(base.seed + 7919)
            out.append(("guessed-key", Replayed(base, GuessedKeyLink(dep.deployed, rng),
                                                "guessed keys (a fresh one per call)")))
        if base.surface == "channel":
            out.append(("correlated", CorrelatedJammer(psr_db=base.budget, seed=base.seed,
                                                       knows=getattr(base, "knows", "all"))))
        return out
    if dep.name == "pilot-check" and isinstance(base, PilotAttack):
        from semguard.defenses.pilot_check import CheckAwarePilotAttack
        kw = _pgd_kwargs(base)
        kw.pop("surface")
        return [("check-aware", CheckAwarePilotAttack(**kw))]
    return [("white-box", base)]  # a differentiable receiver: the attack through it is the adaptive one
