"""Pretrained weights: safetensors files with their codec's registry name and config inside,
verified against a sha256 before loading.

``ZOO`` is the one table of every shipped file (image, task and text codecs, the text codec's
tokenizer among its assets); ``pretrained(name)`` builds the codec and loads them, and
``semguard list pretrained`` lists them.  Files are written by ``semguard train ... --export``
(see README for the commands).  An SNR-switched codec is a :class:`SwitchEntry`: two other
entries and a threshold, not a file of its own, so its parts are stored once and a retrained
part cannot leave a stale copy behind.

Files exported since this version also carry ``tensors_sha256``, a digest of their tensors'
names, dtypes, shapes and bytes, so a weight file given by path (not only a shipped one) that was
corrupted after export is refused at load.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from semguard.codecs.base import SemanticCodec
from semguard.registry import build

__all__ = ["ZooEntry", "SwitchEntry", "ZOO", "pretrained", "save_weights", "load_weights", "sha256_file",
           "asset_path", "shipped_path", "tensors_digest", "WeightsError", "DEFAULT_IMAGE_CODEC", "DEFAULT_TASK_CODEC",
           "DEFAULT_TEXT_CODEC"]

log = logging.getLogger(__name__)


class WeightsError(ValueError):
    """A weight file is missing, corrupt, or not the file that was shipped."""


@dataclass(frozen=True)
class ZooEntry:
    """A shipped weight file, its sha256, what it is; ``codec`` names the registry entry when the
    file's metadata does not, and ``assets`` are further files it needs (name, sha256), such as a
    tokenizer, handed to the codec's ``load_assets``."""

    file: str
    sha256: str
    description: str
    codec: str | None = None
    assets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SwitchEntry:
    """``low`` below ``threshold_db`` average SNR, ``high`` from it (zoo names); the threshold was
    chosen on the validation photos for the parts whose sha256 are ``chosen_for`` (by
    ``scripts/make_switch.py``, which prints this entry)."""

    low: str
    high: str
    threshold_db: float
    chosen_for: tuple[str, str]
    description: str

    @property
    def sha256(self) -> str:
        """The composite's identity: its parts' weights and its threshold."""
        return hashlib.sha256(f"{self.chosen_for[0]}|{self.chosen_for[1]}|{self.threshold_db!r}".encode()).hexdigest()


ZOO: dict[str, ZooEntry | SwitchEntry] = {
    "adjscc-cbr1_6": ZooEntry(
        "adjscc_cbr1_6.safetensors", "adeca99d44fd9c8adde820c9b3f8a97dbc04abf0562cc663d42a7f118a594f6a",
        "SNR-adaptive DeepJSCC (GDN + attention + residual stages, width 64), cbr 1/6, 22000 bf16 steps on "
        "Debian photo crops over AWGN (2/3 of steps) and Rayleigh at SNR -2..22 dB, then 15000 at lr 3e-4, "
        "then 6000 on 128x128 crops at -4..10 dB"),
    "adjscc-cbr1_12": ZooEntry(
        "adjscc_cbr1_12.safetensors", "f939252700a6b5271c2d553a823befa8e10213d39473f85a519426c07e7c026c",
        "SNR-adaptive DeepJSCC (GDN + attention + residual stages, width 64), cbr 1/12, 7500 bf16 steps on "
        "Debian photo crops over AWGN (2/3 of steps) and Rayleigh at SNR -2..22 dB"),
    "softcast-cbr1_6": ZooEntry(
        "softcast_cbr1_6.safetensors", "8f313d65f06e6316c2f664318e56b357e9e253569c66d270831a5bf5769fc839",
        "SoftCast-style linear analog codec, cbr 1/6: 16x16-block PCA of 2048 Debian photo crops, power "
        "allocation by water-filling at 10 dB, LMMSE decoding (fitted, not trained)"),
    "analog-cbr1_6": ZooEntry(
        "analog_cbr1_6.safetensors", "6d4633c17cd20053868fd6d3776e1ce1a06c0f6abeb30f0a66a79a0eb3cc7ab6",
        "softcast-cbr1_6's fitted linear path plus a learned SNR-aware refinement (width 64), 10000 bf16 steps "
        "on Debian photo crops over AWGN (2/3) and Rayleigh at SNR 4..24 dB, mean-PSNR objective; then 9000 "
        "more with a learned encoder-side adapter (width 64) added"),
    "softcast-cbr1_12": ZooEntry(
        "softcast_cbr1_12.safetensors", "28fa2fa4ff5ce7871402d75f9fdfdd668e63cc5c7ab3fc9f22cc6d4ec4c50b46",
        "SoftCast-style linear analog codec, cbr 1/12: 16x16-block PCA of 2048 Debian photo crops, power "
        "allocation by water-filling at 10 dB, LMMSE decoding (fitted, not trained)"),
    "analog-cbr1_12": ZooEntry(
        "analog_cbr1_12.safetensors", "2245a6a255d2702e955b3f559b57cd2e1bacef3fca02cb671987497ea1379a98",
        "the cbr-1/12 fitted linear path plus a learned SNR-aware refinement (width 64), 8000 bf16 steps "
        "on Debian photo crops over AWGN (2/3) and Rayleigh at SNR 4..24 dB, mean-PSNR objective; then 5871 "
        "more with a learned encoder-side adapter (width 64) added"),
    "task-fmnist": ZooEntry(
        "task_fmnist.safetensors", "7274aa124748af9483ebaf8ba738df0ee36271a4432b9303a3a68c3808748e5a",
        "Fashion-MNIST task codec, 16 complex symbols per image, AWGN and Rayleigh at SNR -2..22 dB"),
    "task-fmnist-noiseless": ZooEntry(
        "task_fmnist_noiseless.safetensors", "a49fcdd0f95e243e5f560ca1786ce8403d92970312fe0b40ff5160fdc41e7f4b",
        "the same architecture trained at 60 dB (a noiseless reference classifier for the task codec)"),
    "task-fmnist-adv": ZooEntry(
        "task_fmnist_adv.safetensors", "99c4120ff3bd8e04b6be9ef294ec147c5debe9256e6c65c9e852dffb4c57dd3b",
        "task-fmnist-adv-symbols fine-tuned 800 more steps by mixed adversarial training (input linf PGD eps 0.1, "
        "then symbol PGD at PSR -10 dB, 4 steps each, half clean loss), AWGN and Rayleigh at SNR -2..22 dB; "
        "float16 (docs/defenses.md)"),
    "task-fmnist-noise25": ZooEntry(
        "task_fmnist_noise25.safetensors", "708095f5f4b61a1ccb2937e10cda86bbef41892939eea02b4efe2e6312c5a2c8",
        "task-fmnist fine-tuned 1500 steps with Gaussian data augmentation, N(0, 0.25^2) per pixel on every "
        "training image (--noise-sigma 0.25, Cohen et al.), AWGN and Rayleigh at SNR -2..22 dB: the base "
        "classifier of input randomized smoothing at sigma 0.25; float16 (docs/defenses.md)"),
    "task-fmnist-noise50": ZooEntry(
        "task_fmnist_noise50.safetensors", "9d1ddcce39136b5101874ccc2e35a4edc0065e5509f9185b3f638b965c122667",
        "task-fmnist fine-tuned 1500 steps with Gaussian data augmentation at sigma 0.5 (--noise-sigma 0.5), "
        "otherwise as task-fmnist-noise25: the base classifier of input smoothing at sigma 0.5; float16"),
    "task-fmnist-adv-symbols": ZooEntry(
        "task_fmnist_adv_symbols.safetensors", "19b51445ef1c58ba3adf3380ad8448171c2a0f89e6f70502e55747775084b5e8",
        "task-fmnist fine-tuned 800 steps by symbol-domain adversarial training (PGD at PSR -10 dB, 5 steps), "
        "AWGN and Rayleigh at SNR -2..22 dB; float16 (docs/defenses.md)"),
    "deepsc-wordnet": ZooEntry(
        "deepsc.safetensors", "94e480b5bf6c42a864f3c1d60783304e71b630e35a3be5583d517a64c133caa2",
        "DeepSC text codec (pre-norm transformer, d_model 128, 8 symbols per token, non-autoregressive "
        "receiver) trained on WordNet example sentences over AWGN and Rayleigh at SNR 0..18 dB, with its "
        "WordPiece tokenizer",
        codec="deepsc",
        assets=(("deepsc-tokenizer.json", "83a39b5301c05e0063286bd260866bf3362cfed6a99c98d2040dec7ea890929b"),)),
    "switched-cbr1_6": SwitchEntry(
        "adjscc-cbr1_6", "analog-cbr1_6", 4.0,
        ("adeca99d44fd9c8adde820c9b3f8a97dbc04abf0562cc663d42a7f118a594f6a",
         "6d4633c17cd20053868fd6d3776e1ce1a06c0f6abeb30f0a66a79a0eb3cc7ab6"),
        "adjscc-cbr1_6 below 4 dB average SNR, analog-cbr1_6 from 4 dB (the threshold where analog overtakes "
        "adjscc over AWGN on the validation photos; scripts/make_switch.py)"),
    "switched-cbr1_12": SwitchEntry(
        "adjscc-cbr1_12", "analog-cbr1_12", 4.0,
        ("f939252700a6b5271c2d553a823befa8e10213d39473f85a519426c07e7c026c",
         "2245a6a255d2702e955b3f559b57cd2e1bacef3fca02cb671987497ea1379a98"),
        "adjscc-cbr1_12 below 4 dB average SNR, analog-cbr1_12 from 4 dB (threshold from the validation "
        "photos over AWGN; scripts/make_switch.py)"),
    # adversarially trained image codec (issue 19; docs/defenses.md, "The default image codec")
    "analog-cbr1_6-adv": ZooEntry(
        "analog_cbr1_6_adv.safetensors", "dd61d7dc71deced62a7ed670253c1e49a885ca997e55b27aa57841c1b4a51b05",
        "analog-cbr1_6 fine-tuned 200 steps by symbol-domain adversarial training (PGD at PSR -10 dB, 3 steps, "
        "half clean loss) on 128x128 Debian photo crops over AWGN (2/3) and Rayleigh at SNR 4..24 dB; float16. "
        "Barely more robust than analog-cbr1_6 (docs/defenses.md)"),
    "switched-cbr1_6-adv": SwitchEntry(
        "adjscc-cbr1_6", "analog-cbr1_6-adv", 4.0,
        ("adeca99d44fd9c8adde820c9b3f8a97dbc04abf0562cc663d42a7f118a594f6a",
         "dd61d7dc71deced62a7ed670253c1e49a885ca997e55b27aa57841c1b4a51b05"),
        "adjscc-cbr1_6 (undefended) below 4 dB average SNR, analog-cbr1_6-adv from 4 dB (threshold from the "
        "validation photos over AWGN; scripts/make_switch.py)"),
}

# the adversarially trained DeepSC (issue 19; recipe and figures in docs/defenses.md)
ZOO["deepsc-adv"] = ZooEntry(
    "deepsc_adv.safetensors", "b573dae8bcbf3a8afaed34a8386adf8bb3c04b26e0429ec61805e4b9af66919e",
    "deepsc-wordnet fine-tuned 300 steps by symbol-domain adversarial training (PGD on the token "
    "cross-entropy at PSR -10 dB, 3 steps, half clean loss), AWGN and Rayleigh at SNR 0..18 dB, the same "
    "WordPiece tokenizer; float16 (docs/defenses.md)",
    codec="deepsc",
    assets=(("deepsc-tokenizer.json", "83a39b5301c05e0063286bd260866bf3362cfed6a99c98d2040dec7ea890929b"),))

# a bench-only victim meant to be as noise-fragile as Magmaw's DeepSC; it came out more fragile and under-trained
# (issue 18; docs/attacks.md, "Session 15: Magmaw-calibrated DeepSC")
ZOO["deepsc-magmaw"] = ZooEntry(
    "deepsc_magmaw.safetensors", "b717a01108f1cd7c7b75938c2a07f12c82b46f4c817bab5d5857c79a1b1b9e37",
    "deepsc-wordnet re-trained with 4 instead of 8 symbols per token (grow_from: the first 4 kept) for 400 "
    "steps (lr 5e-4, a cosine planned over 1000, cut for time) over AWGN at SNR 5..10 dB, the same WordPiece "
    "tokenizer; float16. An attempt at a victim as fragile as Magmaw's DeepSC that overshot: under-trained, it "
    "tops out at 0.82 token accuracy even at high SNR (docs/attacks.md, session 15); for bench/attacks_text.py "
    "--codec deepsc-magmaw only, not a codec to use",
    codec="deepsc",
    assets=(("deepsc-tokenizer.json", "83a39b5301c05e0063286bd260866bf3362cfed6a99c98d2040dec7ea890929b"),))

DEFAULT_IMAGE_CODEC = "switched-cbr1_6"
DEFAULT_TASK_CODEC = "task-fmnist"
DEFAULT_TEXT_CODEC = "deepsc-wordnet"
# measured beside the default in `semguard run`
REFERENCE_IMAGE_CODECS: tuple[str, ...] = ("adjscc-cbr1_6", "analog-cbr1_6", "softcast-cbr1_6")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order (hex)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_weights(codec: SemanticCodec, registry_name: str, path: str | Path, *,
                 half: bool = False, extra: dict[str, str] | None = None) -> str:
    """Write ``codec``'s weights to a safetensors file; returns its sha256.

    ``half`` stores float tensors as float16 (they are cast back to float32 on load).  The metadata
    records the codec's registry name, config and :func:`tensors_digest`.
    """
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in codec.state_dict().items()}
    meta = {"codec": registry_name, "config": json.dumps(codec.config), **(extra or {}),
            "tensors_sha256": tensors_digest(tensors)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return sha256_file(path)


def load_weights(path: str | Path, *, sha256: str | None = None, device: str | torch.device = "cpu",
                 codec: str | None = None) -> SemanticCodec:
    """Build the codec recorded in a safetensors file and load its weights.

    With ``sha256`` the file must match it exactly (shipped weights always pass one); a file that
    records ``tensors_sha256`` must match it too.  Tensor names, shapes and dtypes must fit the
    codec its config builds.  ``codec`` names the registry entry for files whose metadata does not
    (older DeepSC files).  The codec's ``registry_name`` and ``weights_sha256`` attributes say which
    registry entry built it and from which file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    got = sha256_file(path)
    if sha256 is not None:
        if got != sha256:
            raise WeightsError(f"{path}: sha256 {got[:16]}... does not match the expected {sha256[:16]}...; "
                               "the file is corrupt or was replaced — reinstall semguard or re-export the weights")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors weight file ({e})") from e
    name = meta.get("codec") or codec
    if name is None or "config" not in meta:
        raise WeightsError(f"{path}: no codec name/config in its metadata; was it written by semguard?")
    if codec is not None and name != codec:
        raise WeightsError(f"{path}: holds codec {name!r}, expected {codec!r}")
    if "tensors_sha256" in meta and tensors_digest(tensors) != meta["tensors_sha256"]:
        raise WeightsError(f"{path}: its tensors do not match the digest recorded at export (tensors_sha256); "
                           "the file was corrupted or edited after it was written")
    if "tensors_sha256" not in meta and sha256 is None:
        log.warning("%s records no tensors_sha256 (exported by an older semguard): corruption after export "
                    "cannot be detected; re-export it to add one", path)
    try:
        model: SemanticCodec = build("codec", name, **json.loads(meta["config"]))
    except (TypeError, ValueError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: its config does not build codec {name!r} ({e})") from e
    ref = model.state_dict()
    bad = [f"{k} {tuple(v.shape)} != {tuple(ref[k].shape)}" for k, v in tensors.items()
           if k in ref and tuple(v.shape) != tuple(ref[k].shape)]
    bad += [f"{k} is {v.dtype}, expected a float tensor" for k, v in tensors.items()
            if k in ref and ref[k].is_floating_point() != v.is_floating_point()]
    if bad:
        raise WeightsError(f"{path}: tensors do not fit codec {name!r}: {'; '.join(bad[:3])}")
    tensors = {k: v.to(ref[k].dtype) if k in ref else v for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise WeightsError(f"{path}: weights do not fit codec {name!r} "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.registry_name = name  # what built it, so wrappers can record it
    model.weights_sha256 = got
    return model.to(device).eval()


def shipped_path(file: str) -> Path:
    """Where the package keeps shipped file ``file`` (not checked; :func:`pretrained` and :func:`asset_path` check)."""
    return Path(str(resources.files("semguard.codecs") / "weights" / file))


def asset_path(name: str, file: str) -> Path:
    """The path of asset ``file`` of zoo entry ``name``, after checking its sha256."""
    entry = ZOO.get(name)
    if not isinstance(entry, ZooEntry) or file not in dict(entry.assets):
        raise WeightsError(f"zoo entry {name!r} ships no asset {file!r}")
    path = shipped_path(file)
    if not path.is_file():
        raise WeightsError(f"shipped file missing: {path}; reinstall semguard")
    got = sha256_file(path)
    if got != dict(entry.assets)[file]:
        raise WeightsError(f"{path}: sha256 {got[:16]}... does not match the expected "
                           f"{dict(entry.assets)[file][:16]}...; the file is corrupt or was replaced")
    return path


def pretrained(name: str = DEFAULT_IMAGE_CODEC, *, device: str | torch.device = "cpu") -> SemanticCodec:
    """A shipped pretrained codec by zoo name (see ``ZOO``), sha256-checked, in eval mode."""
    if name not in ZOO:
        raise WeightsError(f"no pretrained weights named {name!r}; shipped: {', '.join(sorted(ZOO)) or 'none'}")
    entry = ZOO[name]
    if isinstance(entry, SwitchEntry):
        return _switched(name, entry, device)
    codec = load_weights(shipped_path(entry.file), sha256=entry.sha256, device=device, codec=entry.codec)
    if entry.assets:
        codec.load_assets({f: asset_path(name, f) for f, _ in entry.assets})
    codec.zoo_name = name
    return codec


def _switched(name: str, entry: SwitchEntry, device: str | torch.device) -> SemanticCodec:
    from semguard.codecs.switch import SNRSwitch

    parts = (entry.low, entry.high)
    now = tuple(ZOO[p].sha256 for p in parts)
    if now != entry.chosen_for:
        raise WeightsError(f"{name}: its {entry.threshold_db} dB threshold was chosen for other weights of "
                           f"{' / '.join(parts)}; re-run scripts/make_switch.py {' '.join(parts)} and update ZOO")
    low, high = (pretrained(p, device=device) for p in parts)
    codec = SNRSwitch.of(low, high, entry.threshold_db)
    codec.registry_name = "switched"
    codec.zoo_name = name
    codec.weights_sha256 = entry.sha256
    return codec.to(device).eval()
