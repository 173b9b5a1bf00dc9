"""``semguard train <codec> --data <name-or-path>``: train a codec through the channels.

Checkpoints go to ``--out`` (resumed automatically); ``--export FILE`` writes the final weights
as safetensors for the zoo.  ``deepsc`` trains on a text corpus (``--data wordnet``, ``europarl``
or a text file) with :class:`~semguard.training.tasks.TextTask`; its WordPiece tokenizer is saved
as ``--out/deepsc-tokenizer.json`` (and next to ``--export``) so ids match on resume and reload.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from semguard.cli.common import add_device_seed
from semguard.codecs._text_tokenizer import TextTokenizer, train_wordpiece
from semguard.codecs.base import SemanticCodec
from semguard.codecs.deepsc import TOKENIZER_FILE, shipped_tokenizer
from semguard.codecs.zoo import ZOO, load_weights, pretrained, save_weights
from semguard.data.images import CropSampler
from semguard.data.sources import image_source, labelled_source
from semguard.data.text import TextCorpus, text_corpus
from semguard.registry import available, build, get
from semguard.training.loop import TrainConfig, train
from semguard.training.tasks import IMAGE_OBJECTIVES, ClassifyTask, ImageTask, Task, TextTask
from semguard.utils import resolve_device, seed_everything

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a codec (resumable)")
    p.add_argument("codec", choices=available("codec"))
    p.add_argument("--data", required=True, help="dataset name (semguard list dataset), a folder of images, "
                   "or for deepsc a text file / folder of *.txt (one sentence a line)")
    p.add_argument("--out", default="runs/train", help="checkpoint folder (default: runs/train)")
    p.add_argument("--cbr", type=float, default=None, help="bandwidth ratio for image codecs, e.g. 0.1667")
    p.add_argument("--width", type=int, default=None, help="hidden width (deepsc: d_model)")
    p.add_argument("--residual", action="store_true",
                   help="image codecs: identity shortcuts around the stride-1 stages")
    p.add_argument("--downsample", type=int, default=None,
                   help="image codecs: 4 (default), 8 or 16 stride-2 downsampling before the channel")
    p.add_argument("--depth", type=int, default=None, help="analog: residual stages of the image refinement")
    p.add_argument("--enc-width", type=int, default=None,
                   help="analog: width of a learned encoder-side adapter (default: none, the linear encoder)")
    p.add_argument("--n-symbols", type=int, default=None, help="channel uses per source (task codec)")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up steps (default: 0)")
    p.add_argument("--crop", type=int, default=64, help="training crop side for image codecs")
    p.add_argument("--objective", choices=IMAGE_OBJECTIVES, default="mse",
                   help="image codecs: minimise the batch MSE (default), or maximise the mean per-crop PSNR, "
                   "which weighs every SNR the same in dB")
    p.add_argument("--snr-min", type=float, default=0.0)
    p.add_argument("--snr-max", type=float, default=20.0)
    p.add_argument("--channels", default="awgn,rayleigh", help="comma-separated channel names, alternated per step")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--val-snr", default="0,10,20", help="comma-separated validation SNRs in dB (default: 0,10,20)")
    p.add_argument("--tokenizer", default=None,
                   help="deepsc: 'shipped' (the pretrained WordPiece vocabulary), 'train' (fit one on the "
                   "training split) or a tokenizer .json; default: shipped for wordnet, train otherwise; "
                   "a tokenizer already in --out is always reused when resuming")
    p.add_argument("--vocab", type=int, default=8000, help="deepsc: vocabulary size with --tokenizer train")
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if --out has a checkpoint")
    p.add_argument("--export", default=None, help="write final weights (safetensors) here")
    p.add_argument("--half", action="store_true", help="export weights as float16")
    p.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast (1.3-1.6x faster per "
                   "step on CPUs with avx512_bf16, see bench/train_speed.py); weights, optimiser, channel "
                   "and validation stay float32")
    p.add_argument("--init", default=None, help="start from the weights in this safetensors file or zoo name "
                   "(fine-tuning; must be the same codec and configuration); ignored when resuming")
    p.add_argument("--no-progress", action="store_true")
    add_device_seed(p)
    p.set_defaults(func=run)


def _codec_kwargs(args: argparse.Namespace) -> dict[str, object]:
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


def _text_tokenizer(args: argparse.Namespace, corpus: TextCorpus) -> TextTokenizer:
    """The run's tokenizer: the one saved in ``--out`` when resuming, else per ``--tokenizer``."""
    saved = Path(args.out) / TOKENIZER_FILE
    choice = args.tokenizer or ("shipped" if corpus.name == "wordnet" else "train")
    if saved.is_file() and not args.no_resume:
        tok = TextTokenizer.from_file(saved)
        if args.tokenizer not in (None, "train"):
            wanted = shipped_tokenizer() if choice == "shipped" else TextTokenizer.from_file(choice)
            if wanted.to_str() != tok.to_str():
                raise ValueError(f"--tokenizer {choice} differs from {saved} of the run being resumed; "
                                 "use a new --out or --no-resume")
        return tok
    if choice == "shipped":
        tok = shipped_tokenizer()
    elif choice == "train":
        print(f"training a {args.vocab}-id WordPiece tokenizer on {len(corpus.split.train)} training sentences")
        tok = train_wordpiece(corpus.split.train, args.vocab)
    else:
        tok = TextTokenizer.from_file(choice)
    saved.parent.mkdir(parents=True, exist_ok=True)
    tok.save(saved)
    return tok


def _text_setup(args: argparse.Namespace) -> tuple[SemanticCodec, Task, TextTokenizer]:
    """DeepSC, its TextTask (train / validation parts of the hash split) and tokenizer."""
    for opt in ("cbr", "n_symbols"):
        if getattr(args, opt) is not None:
            raise ValueError(f"--{opt.replace('_', '-')} does not apply to {args.codec} (a text codec)")
    corpus = text_corpus(args.data)
    if not corpus.split.train or not corpus.split.val:
        raise ValueError(f"{corpus.name}: {len(corpus.split.train)} training / {len(corpus.split.val)} validation "
                         "sentences after the hash split; the corpus is too small to train on")
    tok = _text_tokenizer(args, corpus)
    kw = {"d_model": args.width} if args.width is not None else {}
    codec = build("codec", args.codec, vocab_size=tok.vocab_size, tokenizer=tok, **kw)
    enc = {"max_tokens": codec.max_tokens, "on_overflow": "truncate"}
    task = TextTask(tok.encode(corpus.split.train, **enc), tok.encode(corpus.split.val, **enc))
    print(f"{corpus.name}: {len(corpus.split.train)} training, {len(corpus.split.val)} validation sentences "
          f"(test split unused); tokenizer {tok.vocab_size} ids saved in {args.out}")
    return codec, task, tok


def _image_task(args: argparse.Namespace, codec: SemanticCodec) -> Task:
    if codec.output_key == "logits":
        src = labelled_source(args.data)
        # validate on the last 5000 training examples: the test split is never seen in training
        n_val = min(5000, src.train_x.shape[0] // 10)
        return ClassifyTask(src.train_x[:-n_val], src.train_y[:-n_val], src.train_x[-n_val:], src.train_y[-n_val:])
    img = image_source(args.data)
    if not img.train:
        raise ValueError(f"dataset {args.data!r} has no training images")
    return ImageTask(CropSampler(img.train, crop=args.crop), img.val, objective=args.objective)


def _init_from(codec: SemanticCodec, name: str, source: str) -> None:
    """Load ``source`` (a zoo name or safetensors file) into ``codec``; names and configs must match,
    except that a codec with ``grow_from`` may start from a smaller one of its kind (it decides which)."""
    init = pretrained(source) if source in ZOO else load_weights(source)
    same = type(init) is type(codec) and \
        json.dumps(init.config, sort_keys=True) == json.dumps(codec.config, sort_keys=True)
    if same:
        codec.load_state_dict(init.state_dict())
        print(f"initialised {name} from {source}")
        return
    if type(init) is type(codec) and hasattr(codec, "grow_from"):
        try:
            codec.grow_from(init)
        except ValueError as e:
            raise ValueError(f"--init {source}: {e}") from e
        print(f"initialised {name} from {source}, grown from {json.dumps(init.config)}")
        return
    raise ValueError(f"--init {source}: its codec config {json.dumps(init.config)} differs from "
                     f"{name} {json.dumps(codec.config)}; pass matching --cbr/--width")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    tok: TextTokenizer | None = None
    if args.codec == "deepsc":
        codec, task, tok = _text_setup(args)
    else:
        codec = build("codec", args.codec, **_codec_kwargs(args))
        task = _image_task(args, codec)
    if args.init:
        _init_from(codec, args.codec, args.init)
    elif hasattr(codec, "init_from_images"):  # data-fitted start (analog codecs: the block PCA)
        fit = task.batch(2048, torch.Generator().manual_seed(args.seed))[0]
        codec.init_from_images(fit)
        print(f"fitted {args.codec}'s linear path on {fit.shape[0]} training crops")
    if args.steps > 0 and not any(prm.requires_grad for prm in codec.parameters()):
        raise ValueError(f"{args.codec} has no trainable parameters (it is fitted to the data, not trained): "
                         "use --steps 0 with --export")
    channels = [(name, build("channel", name).to(device)) for name in args.channels.split(",") if name]
    cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, warmup=args.warmup, bf16=args.bf16,
                      snr_min_db=args.snr_min, snr_max_db=args.snr_max, seed=args.seed,
                      ckpt_every=args.ckpt_every, val_every=args.val_every, max_minutes=args.max_minutes,
                      val_snr_db=tuple(float(v) for v in args.val_snr.split(",") if v.strip()))
    n_params = sum(p.numel() for p in codec.parameters())
    print(f"training {args.codec} ({n_params / 1e3:.0f}k parameters, config {json.dumps(codec.config)}) "
          f"on {args.data} through {args.channels}, checkpoints in {args.out}")
    result = train(codec, task, channels, cfg, args.out, device=device, resume=not args.no_resume,
                   progress=not args.no_progress)
    if result["history"]:
        print("last validation:", json.dumps(result["history"][-1]))
    if args.export:
        extra = {"trained_steps": str(result["step"]), "data": str(args.data), "channels": args.channels,
                 "train_config": json.dumps(asdict(cfg))}
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
