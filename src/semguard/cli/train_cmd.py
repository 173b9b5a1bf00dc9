"""``semguard train <codec> --data <name-or-path>``: train a codec through the channels.

Checkpoints go to ``--out`` (resumed automatically); ``--export FILE`` writes the final weights
as safetensors for the zoo.  ``deepsc`` trains on a text corpus (``--data wordnet``, ``europarl``
or a text file) with :class:`~semguard.training.tasks.TextTask`; its WordPiece tokenizer is saved
as ``--out/deepsc-tokenizer.json`` (and next to ``--export``) so ids match on resume and reload.
``--adv input|symbols|mixed`` trains adversarially against the threat library's white-box PGD
(:mod:`semguard.training.adversarial`; recipe and figures in docs/defenses.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from semguard.cli.common import (
    DefaultsFormatter, add_device_seed, check_in_file, check_out_dir, check_out_file, finite_float, float_list, int_at_least,
    lazy_choice, non_negative_float, positive_float, registry_list, registry_name,
)

__all__ = ["add_parser", "run"]


def _objectives() -> tuple[str, ...]:
    from semguard.training.tasks import IMAGE_OBJECTIVES
    return IMAGE_OBJECTIVES


def _adv_modes() -> tuple[str, ...]:
    from semguard.training.adversarial import ADV_MODES
    return ADV_MODES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a codec (resumable)", description=__doc__,
                       formatter_class=DefaultsFormatter)
    p.add_argument("codec", type=registry_name("codec", buildable=True), metavar="CODEC",
                   help="a codec name from `semguard list codec` that is built from the options below "
                   "(not switched / spread, which are built from other codecs)")
    p.add_argument("--data", required=True, help="dataset name (semguard list dataset), a folder of images, "
                   "or for deepsc a text file / folder of *.txt (one sentence a line)")
    p.add_argument("--out", default="runs/train", help="checkpoint folder")
    p.add_argument("--cbr", type=positive_float, default=None,
                   help="bandwidth ratio for image codecs, e.g. 0.1667 (default: the codec's)")
    p.add_argument("--width", type=int_at_least(1), default=None,
                   help="hidden width (deepsc: d_model) (default: the codec's)")
    p.add_argument("--residual", action="store_true",
                   help="image codecs: identity shortcuts around the stride-1 stages")
    p.add_argument("--downsample", type=int_at_least(1), default=None,
                   help="image codecs: 4, 8 or 16 stride-2 downsampling before the channel (default: the codec's, 4)")
    p.add_argument("--depth", type=int_at_least(0), default=None,
                   help="analog: residual stages of the image refinement (default: the codec's)")
    p.add_argument("--enc-width", type=int_at_least(0), default=None,
                   help="analog: width of a learned encoder-side adapter (default: none, the linear encoder)")
    p.add_argument("--n-symbols", type=int_at_least(1), default=None,
                   help="channel uses per source (task codec) (default: the codec's)")
    p.add_argument("--symbols-per-token", type=int_at_least(1), default=None,
                   help="deepsc: complex channel uses per token (default: the codec's, 8)")
    p.add_argument("--steps", type=int_at_least(0), default=10_000, help="optimiser steps in all (a resumed run "
                   "continues to this count); 0 with --export writes the initial / fitted weights")
    p.add_argument("--batch", type=int_at_least(1), default=32, help="training examples per step")
    p.add_argument("--lr", type=non_negative_float, default=1e-3, help="peak learning rate (Adam, cosine decay to 1e-5)")
    p.add_argument("--warmup", type=int_at_least(0), default=0, help="linear learning-rate warm-up steps")
    p.add_argument("--crop", type=int_at_least(16), default=64, help="training crop side for image codecs (pixels)")
    p.add_argument("--objective", type=lazy_choice(_objectives, "objective"), default="mse",
                   help="image codecs: mse minimises the batch MSE, psnr maximises the mean per-crop PSNR, "
                   "which weighs every SNR the same in dB")
    p.add_argument("--snr-min", type=finite_float, default=0.0, help="lowest training SNR in dB (Es/N0), "
                   "drawn uniformly per example")
    p.add_argument("--snr-max", type=finite_float, default=20.0, help="highest training SNR in dB, >= --snr-min")
    p.add_argument("--channels", type=registry_list("channel"), default="awgn,rayleigh",
                   help="comma-separated channel names (semguard list channel), alternated per step")
    p.add_argument("--val-every", type=int_at_least(1), default=1000, help="validate every this many steps")
    p.add_argument("--val-snr", type=float_list, default="0,10,20", help="comma-separated validation SNRs in dB")
    p.add_argument("--tokenizer", default=None,
                   help="deepsc: 'shipped' (the pretrained WordPiece vocabulary), 'train' (fit one on the "
                   "training split) or a tokenizer .json; default: shipped for wordnet, train otherwise; "
                   "a tokenizer already in --out is always reused when resuming")
    p.add_argument("--vocab", type=int_at_least(3), default=8000,
                   help="deepsc: vocabulary size with --tokenizer train")
    p.add_argument("--ckpt-every", type=int_at_least(1), default=250, help="write --out/last.pt every this many steps")
    p.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop (with a checkpoint) after this much wall time (default: no limit)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if --out has a checkpoint")
    p.add_argument("--export", default=None, help="write final weights (safetensors) here (default: none)")
    p.add_argument("--half", action="store_true", help="export weights as float16")
    p.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast (1.3-1.6x faster per "
                   "step on CPUs with avx512_bf16, see bench/train_speed.py); weights, optimiser, channel "
                   "and validation stay float32")
    p.add_argument("--init", default=None, help="start from the weights in this safetensors file or zoo name "
                   "(fine-tuning; must be the same codec and configuration); its sha256 is recorded in the "
                   "checkpoint and the export; ignored when resuming (default: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--adv", type=lazy_choice(_adv_modes, "adversarial mode"), default=None,
                   help="adversarial training against white-box PGD through the link: input (linf --adv-eps "
                   "on the source), symbols (--adv-psr-db on the encoder output) or mixed (both, the symbol "
                   "attack answering the input one); see docs/defenses.md (default: clean training)")
    p.add_argument("--adv-eps", type=non_negative_float, default=None,
                   help="--adv input|mixed: linf budget on the source, in (0, 1] (images in [0, 1])")
    p.add_argument("--adv-psr-db", type=finite_float, default=None,
                   help="--adv symbols|mixed: PSR budget of the symbol perturbation in dB, -60..20 "
                   "(-10: a tenth of the symbols' power)")
    p.add_argument("--adv-steps", type=int_at_least(1, 1000), default=7,
                   help="PGD steps per training step (step 2.5/steps of the budget, random start)")
    p.add_argument("--adv-weight", type=positive_float, default=1.0,
                   help="attacked share of the loss, in (0, 1] (1: train on attacked batches only)")
    p.add_argument("--noise-sigma", type=non_negative_float, default=0.0,
                   help="task codec: Gaussian data augmentation, N(0, sigma^2) per pixel on every training and "
                   "validation image (Cohen et al.), for randomized-smoothing certificates at that sigma")
    add_device_seed(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Every check that needs no data, before any work starts (nothing is written on failure)."""
    from semguard.registry import available

    if args.snr_min > args.snr_max:
        raise ValueError(f"--snr-min {args.snr_min:g} is above --snr-max {args.snr_max:g}; "
                         "give --snr-min <= --snr-max")
    check_out_dir(args.out)
    if args.export:
        check_out_file(args.export, "--export")
    if args.init:
        from semguard.codecs.zoo import ZOO
        if args.init not in ZOO:
            check_in_file(args.init, "--init")
    if args.tokenizer not in (None, "shipped", "train"):
        check_in_file(args.tokenizer, "--tokenizer")
    if args.data not in available("dataset") and not Path(args.data).exists():
        raise ValueError(f"--data {args.data}: neither a dataset name ({', '.join(available('dataset'))}) "
                         "nor an existing file or folder")
    _adv_spec(args)
    if args.noise_sigma and args.codec != "task":
        raise ValueError(f"--noise-sigma applies to the task codec (augmentation for input smoothing), not {args.codec}")
    if args.noise_sigma and args.adv in ("input", "mixed"):
        raise ValueError(f"--noise-sigma with --adv {args.adv}: give one input-side training, not both")
    if args.symbols_per_token is not None and args.codec != "deepsc":
        raise ValueError(f"--symbols-per-token applies to deepsc, not {args.codec}; image and task codecs "
                         "take --cbr / --n-symbols")
    if args.codec == "deepsc":
        for opt in ("cbr", "n_symbols"):
            if getattr(args, opt) is not None:
                raise ValueError(f"--{opt.replace('_', '-')} does not apply to {args.codec} (a text codec)")


def _adv_spec(args: argparse.Namespace) -> Any:
    """The adversarial-training spec of the flags (None without --adv); a one-line error naming the flag."""
    given = [f for f, v in (("--adv-eps", args.adv_eps), ("--adv-psr-db", args.adv_psr_db)) if v is not None]
    if args.adv is None:
        if given:
            raise ValueError(f"{given[0]} applies to adversarial training only: add --adv input|symbols|mixed")
        return None
    from semguard.training.adversarial import AdvSpec

    try:
        spec = AdvSpec(args.adv, eps=args.adv_eps, psr_db=args.adv_psr_db, steps=args.adv_steps,
                       weight=args.adv_weight)
    except ValueError as e:  # name the flag, not the field
        msg = str(e)
        for field, flag in (("adv eps", "--adv-eps"), ("adv psr_db", "--adv-psr-db"), ("adv steps", "--adv-steps"),
                            ("adv weight", "--adv-weight"), ("adv mode", "--adv")):
            msg = msg.replace(field, flag)
        raise ValueError(msg) from None
    if args.codec == "deepsc" and spec.mode != "symbols":
        raise ValueError(f"--adv {spec.mode}: deepsc takes token ids, which the input surface cannot perturb; "
                         "use --adv symbols")
    return spec


def _codec_kwargs(args: argparse.Namespace) -> dict[str, object]:
    import inspect

    from semguard.registry import available, get

    kw: dict[str, object] = {}
    if args.cbr is not None:
        kw["cbr"] = args.cbr
    if args.width is not None:
        kw["width"] = args.width
    if args.n_symbols is not None:
        kw["n_symbols"] = args.n_symbols
    for flag, key, value in (("--residual", "residual", True if args.residual else None),
                             ("--downsample", "downsample", args.downsample),
                             ("--depth", "depth", args.depth),
                             ("--enc-width", "enc_width", args.enc_width)):
        if value is None:
            continue
        takes = [n for n in available("codec") if key in inspect.signature(get("codec", n)).parameters]
        if args.codec not in takes:
            raise ValueError(f"{flag} applies to the codecs that take it ({', '.join(takes)}), not {args.codec}")
        kw[key] = value
    return kw


def _image_task(args: argparse.Namespace, codec: Any) -> Any:
    from semguard.data.images import CropSampler
    from semguard.data.sources import image_source, labelled_source
    from semguard.training.tasks import ClassifyTask, ImageTask

    if codec.output_key == "logits":
        src = labelled_source(args.data)
        # validate on the last 5000 training examples: the test split is never seen in training
        n_val = min(5000, src.train_x.shape[0] // 10)
        return ClassifyTask(src.train_x[:-n_val], src.train_y[:-n_val], src.train_x[-n_val:], src.train_y[-n_val:],
                            noise_sigma=args.noise_sigma)
    img = image_source(args.data)
    if not img.train:
        raise ValueError(f"dataset {args.data!r} has no training images")
    return ImageTask(CropSampler(img.train, crop=args.crop), img.val, objective=args.objective)


def _init_from(codec: Any, name: str, source: str) -> dict[str, str]:
    """Load ``source`` (a zoo name or safetensors file) into ``codec``; names and configs must match,
    except that a codec with ``grow_from`` may start from a smaller one of its kind (it decides which).
    Returns what to record of it: the source and the sha256 of the file read."""
    from semguard.codecs.zoo import ZOO, load_weights, pretrained, sha256_file

    if source in ZOO:
        init, digest = pretrained(source), ZOO[source].sha256
    else:
        digest = sha256_file(source)  # of the bytes about to be loaded: what this run started from
        init = load_weights(source)
    record = {"init": source, "init_sha256": digest}
    same = type(init) is type(codec) and \
        json.dumps(init.config, sort_keys=True) == json.dumps(codec.config, sort_keys=True)
    if same:
        codec.load_state_dict(init.state_dict())
        print(f"initialised {name} from {source} (sha256 {digest})")
        return record
    if type(init) is type(codec) and hasattr(codec, "grow_from"):
        try:
            codec.grow_from(init)
        except ValueError as e:
            raise ValueError(f"--init {source}: {e}") from e
        print(f"initialised {name} from {source} (sha256 {digest}), grown from {json.dumps(init.config)}")
        return record
    raise ValueError(f"--init {source}: its codec config {json.dumps(init.config)} differs from "
                     f"{name} {json.dumps(codec.config)}; pass matching --cbr/--width")


def run(args: argparse.Namespace) -> int:
    _check(args)  # refuse bad input before importing torch or touching data
    import hashlib
    from dataclasses import asdict

    import torch

    from semguard.codecs.deepsc import TOKENIZER_FILE
    from semguard.codecs.zoo import save_weights
    from semguard.registry import build
    from semguard.training.checkpoint import latest_checkpoint
    from semguard.training.loop import TrainConfig, train
    from semguard.utils import dumps_strict, resolve_device, seed_everything

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    resuming = not args.no_resume and latest_checkpoint(args.out) is not None
    tok = None
    if args.codec == "deepsc":
        from semguard.training.text_setup import text_setup

        setup = text_setup(args.data, args.out, codec=args.codec, tokenizer=args.tokenizer, vocab=args.vocab,
                           resume=not args.no_resume, width=args.width,
                           symbols_per_token=args.symbols_per_token)
        codec, task, tok = setup.codec, setup.task, setup.tokenizer
        print(f"{setup.corpus.name}: {len(setup.corpus.split.train)} training, {len(setup.corpus.split.val)} "
              f"validation sentences (test split unused); tokenizer {tok.vocab_size} ids "
              f"({setup.tokenizer_source}) saved in {args.out}")
    else:
        codec = build("codec", args.codec, **_codec_kwargs(args))
    meta: dict[str, str] = {}
    if args.init and resuming:
        print(f"--init {args.init} ignored: resuming the run in {args.out} (--no-resume starts afresh)")
    elif args.init:  # before the data are loaded: a bad weights file fails fast
        meta = _init_from(codec, args.codec, args.init)
    if args.codec != "deepsc":
        task = _image_task(args, codec)
    if not args.init and hasattr(codec, "init_from_images"):  # data-fitted start (analog codecs: the block PCA)
        fit = task.batch(2048, torch.Generator().manual_seed(args.seed))[0]
        codec.init_from_images(fit)
        print(f"fitted {args.codec}'s linear path on {fit.shape[0]} training crops")
    if args.steps > 0 and not any(prm.requires_grad for prm in codec.parameters()):
        raise ValueError(f"{args.codec} has no trainable parameters (it is fitted to the data, not trained): "
                         "use --steps 0 with --export")
    channels = [(name, build("channel", name).to(device)) for name in args.channels]
    cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, warmup=args.warmup, bf16=args.bf16,
                      snr_min_db=args.snr_min, snr_max_db=args.snr_max, seed=args.seed,
                      ckpt_every=args.ckpt_every, val_every=args.val_every, max_minutes=args.max_minutes,
                      val_snr_db=args.val_snr, adv=_adv_spec(args))
    n_params = sum(p.numel() for p in codec.parameters())
    print(f"training {args.codec} ({n_params / 1e3:.0f}k parameters, config {json.dumps(codec.config)}) "
          f"on {args.data} through {','.join(args.channels)}, checkpoints in {args.out}"
          + (f", adversarially ({json.dumps(cfg.adv.to_dict())})" if cfg.adv else ""))
    result = train(codec, task, channels, cfg, args.out, device=device, resume=not args.no_resume,
                   progress=not args.no_progress, meta=meta)
    if result["history"]:
        print("last validation:", dumps_strict(result["history"][-1]))
    if args.export:
        extra = {"trained_steps": str(result["step"]), "data": str(args.data), "channels": ",".join(args.channels),
                 "train_config": dumps_strict(asdict(cfg)), **result.get("meta", {})}
        if tok is not None:  # load_weights rebuilds the codec without it: ship it alongside
            tok_path = Path(args.export).parent / TOKENIZER_FILE
            tok_path.parent.mkdir(parents=True, exist_ok=True)
            tok.save(tok_path)
            extra |= {"tokenizer": TOKENIZER_FILE,
                      "tokenizer_sha256": hashlib.sha256(tok_path.read_bytes()).hexdigest()}
            print(f"tokenizer written to {tok_path}")
        digest = save_weights(codec, args.codec, args.export, half=args.half, extra=extra)
        print(f"exported {args.export} sha256 {digest}")
    return 0
