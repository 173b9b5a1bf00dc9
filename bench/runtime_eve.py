"""What Eve gets from the runtime's tap, and what Mallory gets in the path.

    python bench/runtime_eve.py --out bench/results/runtime_eve.json [--sessions 10] [--frames 28]
        [--eve-decoders hard,chase:6,chase:8] [--eve-snr-db X]

1. **Key agreement** (in process, the emulator's probe channel and message classes): Alice and Bob run
   PLKG; Eve, ``d`` wavelengths from Bob, overhears Alice's probes and runs the agreement herself from
   the public discussion (:mod:`semguard.runtime.plkg_eve`).  Per distance: how often her key passes
   Alice's tag, her bit disagreement on the disclosed sample, ``n (1 - H2(e))`` (what a channel with her
   disagreement carries about the reconciled bits), the Gaussian bound the keys package gives for her
   actual correlation (``keys.secrecy.eve_information``), and the bound the key was sized against
   (the declared Eve, >= 0.5 wavelengths, noiseless).  Each Eve decoder of ``--eve-decoders`` attacks the
   same sessions: ``hard`` (her own quantisation, bchlib) and ``chase:P`` (soft LLRs, Chase-II over her
   ``P`` least reliable bits per block; also what her LLRs carry per bit on the disclosed sample).
2. **Codec-level fidelity** (processes): the default image codec's outputs for 32x32 crops of the shipped
   photos, sent by the bench's tx thread through one ``semguard channel`` process with a tap (and Eve's
   probes at 0.5 wavelengths) to the bench's rx thread, which applies AWGN at 10 dB and decodes (Bob).
   Eve decodes every DATA frame of the tap through the same AWGN: with security off the tapped block;
   sealed, her best attempt (the highest PSNR of: the ciphertext read as IQ, the scrambled IQ as is, and
   all-zero symbols -- the decoder's prior).  With ``--mitm`` unauthenticated, Mallory's read tap is
   decoded the same way.  Each decoder of ``--eve-decoders`` runs the key agreement on the real tap; with
   a key that passed Alice's tag she derives the session master from the tapped transcript and decodes
   the frames she opens (``eve_decrypted_psnr_db``; ``--eve-distance 0`` puts her beside Bob).  Each
   emulator is stopped by its pid.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import SNR_DB, Emulator  # noqa: E402  (the bench's emulator process, stopped by its pid)

from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained  # noqa: E402
from semguard.keys.secrecy import channel_spectrum, eve_information  # noqa: E402
from semguard.metrics.image import psnr  # noqa: E402
from semguard.registry import build  # noqa: E402
from semguard.runtime._net import StopFlag  # noqa: E402
from semguard.runtime.emulator import read_tap  # noqa: E402
from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, FrameType, decode_frame, split_symbols, \
    unpack_data  # noqa: E402
from semguard.runtime.handshake import HandshakeError  # noqa: E402
from semguard.runtime.kbview import KbView  # noqa: E402
from semguard.runtime.plkg import PlkgConfig, PlkgInitiator, PlkgResponder  # noqa: E402
from semguard.runtime.plkg_eve import eve_attempt, eve_master, sessions_from_messages, sessions_from_tap  # noqa: E402
from semguard.runtime.probe_channel import ProbeChannel  # noqa: E402
from semguard.runtime.relay import EVE_PROBE  # noqa: E402
from semguard.runtime.rx import RxConfig, run_rx  # noqa: E402
from semguard.runtime.tx import TxConfig, run_tx  # noqa: E402
from semguard.runtime.wire import iq_out  # noqa: E402

KB = KbView("kb", 1, "00" * 32)


def one_session(seed: int, distance: float, eve_snr_db: float | None = None) -> tuple[dict, dict] | None:
    """Alice, Bob and Eve at ``distance``: (the tapped session, Alice's figures), None when Alice and Bob failed."""
    ch = ProbeChannel(seed=seed, eve_distance=distance, eve_snr_db=eve_snr_db)
    bob = PlkgInitiator(KB, rng=np.random.default_rng(seed + 100))
    alice = PlkgResponder(KB, rng=np.random.default_rng(seed + 200))
    msgs, msg = [], bob.first()
    try:
        while msg is not None:
            to_alice = ch.through(msg, "tx")
            reply = ch.through(alice.handle(to_alice), "rx")
            msgs += [to_alice, reply]
            while ch.overheard:                       # what the emulator's relay writes to the tap
                rid, y = ch.overheard.popleft()
                msgs.append({"m": EVE_PROBE, "round": rid, "probe": {"iq": iq_out(y)}})
            msg = bob.handle(reply)
    except HandshakeError:
        return None
    return sessions_from_messages(msgs)[0], dict(alice.info)


def parse_decoders(spec: str) -> list[tuple[str, int]]:
    """``"hard,chase:6"`` -> ``[("hard", 0), ("chase", 6)]``."""
    out = []
    for item in spec.split(","):
        name, _, p = item.strip().partition(":")
        out.append((name, int(p or 6) if name == "chase" else 0))
    return out


def attack(session: dict, decoder: tuple[str, int], eve_snr_db: float | None, keys: list | None = None) -> dict:
    """One decoder's try; a key that passed Alice's tag is appended to ``keys`` (never printed)."""
    res = eve_attempt(session, decoder=decoder[0], chase_p=decoder[1] or 6, eve_snr_db=eve_snr_db)
    if keys is not None and res.key is not None:
        keys.append(res.key)
    return res.to_dict()


def eve_decrypt_psnr(dec: "Decoder", frames: list[bytes], master: bytes) -> list[float]:
    """Eve holding the session master opens every tapped DATA frame as Bob does (unscrambling symbol-sealed
    blocks) and decodes it; a frame she cannot open counts as the decoder's no-information output."""
    from semguard.runtime.scramble import SymbolScrambler
    from semguard.runtime.secure import Opener, Rejected
    opener, scr, out = Opener(master, window=64), SymbolScrambler(master), []
    for k, raw in enumerate(frames):
        f = decode_frame(raw)
        try:
            side, iq = unpack_data(opener.open(f))
            if f.flags & FLAG_SYMBOLS:
                iq = scr.decrypt(iq, f.epoch, f.seq)
            out.append(dec.psnr(np.asarray(iq), k))
        except Rejected:
            out.append(dec.psnr(np.zeros(1, np.complex64), k))
    return out


def key_agreement(sessions: int, distances: list[float], decoders: list[tuple[str, int]],
                  eve_snr_db: float | None = None) -> list[dict]:
    from semguard.channels.spectrum import spatial_correlation
    cfg = PlkgConfig()
    spec = channel_spectrum(cfg.n_probes, "mobile", cfg.doppler_hz, cfg.probe_rate_hz)
    snr_e = cfg.snr_db if eve_snr_db is None else eve_snr_db
    rows = []
    for d in distances:
        rho = float(spatial_correlation(d))
        res = [r for r in (one_session(s, d, eve_snr_db) for s in range(sessions)) if r is not None]
        info = [r[1] for r in res]
        predicted = [eve_information(spec, i["step"], rho, cfg.snr_db, snr_e)[0] for i in info]
        declared = [i["eve_info_bits"] for i in info]
        for dec in decoders:
            t0 = time.perf_counter()
            eve = [attack(r[0], dec, eve_snr_db) for r in res]
            measured = [e["soft_bits"] if e["soft_bits"] is not None else e["bsc_bits"] for e in eve]
            row = {"distance_wavelengths": d, "rho": rho, "eve_snr_db": snr_e,
                   "decoder": dec[0] if dec[0] == "hard" else f"chase:{dec[1]}",
                   "sessions_with_key": len(res), "sessions": sessions,
                   "eve_key_matches": sum(e["key_matched"] for e in eve),
                   "eve_blocks_ok_total": sum(e["eve_blocks_ok"] for e in eve),
                   "bob_blocks_total": sum(int(r[0]["tx_pd"]["n_blocks"]) - i["failed_blocks"] for r, i in zip(res, info)),
                   "eve_sample_disagreement_median": float(np.median([e["sample_disagreement"] for e in eve])),
                   "eve_bsc_bits_median": float(np.median([e["bsc_bits"] for e in eve])),
                   "eve_measured_bits_median": float(np.median(measured)),
                   "eve_measured_bits_max": float(np.max(measured)),
                   "sessions_measured_over_declared": int(sum(m > b for m, b in zip(measured, declared))),
                   "predicted_eve_bits_at_rho_median": float(np.median(predicted)),
                   "declared_eve_bits_median": float(np.median(declared)),
                   "key_bits_median": float(np.median([i["key_bits"] for i in info])),
                   "reconciled_bits_median": float(np.median([e["reconciled_bits"] for e in eve])),
                   "eve_seconds_per_session": (time.perf_counter() - t0) / max(1, len(eve))}
            if dec[0] == "chase":
                row["eve_sample_information_median"] = float(np.median([e["sample_information"] for e in eve]))
                row["eve_correlation_fit_median"] = float(np.median([e["correlation_fit"] for e in eve]))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def crops(n: int) -> torch.Tensor:
    """``n`` 32x32 crops of the shipped evaluation photos, ``[n, 3, 32, 32]`` in [0, 1]."""
    from semguard.data.photos import shipped_photos
    photos = shipped_photos()
    out = [photos[i % len(photos), :, 32 * (i // len(photos)) + 64: 32 * (i // len(photos)) + 96, 96:128]
           for i in range(n)]
    return torch.stack(out)


class Decoder:
    def __init__(self, codec, images: torch.Tensor) -> None:
        self.codec, self.images = codec, images
        self.channel = build("channel", "awgn")
        self.kwargs = codec.decode_kwargs(images[:1])
        self.g = torch.Generator().manual_seed(7)

    def psnr(self, iq: np.ndarray, i: int) -> float:
        x = torch.from_numpy(np.nan_to_num(iq.astype(np.complex64), nan=0.0, posinf=0.0, neginf=0.0)).reshape(1, -1)
        n = self.codec.n_symbols(tuple(self.images.shape[1:]))
        x = torch.nn.functional.pad(x, (0, max(0, n - x.shape[1])))[:, :n]
        p = x.abs().square().mean()
        if p > 0:
            x = x / p.sqrt()                                  # the unit power every transmitted block has
        with torch.no_grad():
            y, state = self.channel(x, SNR_DB, generator=self.g)
            x_hat = self.codec.decode(y, state, **self.kwargs).clamp(0, 1)
        return float(psnr(x_hat, self.images[i:i + 1])[0])


def eve_psnr(dec: Decoder, raw: bytes, i: int) -> tuple[float, str]:
    """Eve's best decode of one tapped frame: (PSNR, which attempt)."""
    f = decode_frame(raw)
    if not f.flags & FLAG_SEALED:
        return dec.psnr(unpack_data(f.payload)[1], i), "tapped block"
    tries = {"zero symbols (prior)": dec.psnr(np.zeros(1, np.complex64), i)}
    if f.flags & FLAG_SYMBOLS:
        tries["scrambled block as is"] = dec.psnr(np.frombuffer(split_symbols(f.payload)[1], "<c8"), i)
    else:
        body = f.payload[: len(f.payload) - (len(f.payload) % 8)]
        tries["ciphertext as IQ"] = dec.psnr(np.frombuffer(body, "<c8")[-dec.codec.n_symbols((3, 32, 32)):], i)
    best = max(tries, key=tries.get)
    return tries[best], best


def fidelity(tmp: Path, codec, images: torch.Tensor, how: str, decoders: list[tuple[str, int]],
             eve_distance: float = 0.5, eve_snr_db: float | None = None) -> dict:
    """One process run: Bob's PSNR, Eve's from the tap, Mallory's from her read tap (``how == "mitm"``)."""
    tap, mtap = tmp / f"eve_{how}.bin", tmp / f"mallory_{how}.bin"
    for p in (tap, mtap):
        p.unlink(missing_ok=True)
    extra = ["--tap", str(tap), "--eve-distance", str(eve_distance)]
    if eve_snr_db is not None:
        extra += ["--eve-snr-db", str(eve_snr_db)]
    if how == "mitm":
        extra += ["--mitm", "--mitm-tap", str(mtap)]
    emu = Emulator(tmp, tuple(extra))
    dec = Decoder(codec, images)
    bob: dict[int, float] = {}
    n = images.shape[0]

    def on_block(side: dict, iq: np.ndarray) -> None:
        bob[side["i"]] = dec.psnr(iq, side["i"])

    def blocks():
        with torch.no_grad():
            for i in range(n):
                yield {"i": i}, codec.encode(images[i:i + 1], torch.tensor([SNR_DB])).reshape(-1).numpy()

    keyed = how != "clear"
    seal = "symbols" if how == "symbols" else "bytes"
    try:
        res: dict = {}
        rx = threading.Thread(target=lambda: res.update(run_rx(RxConfig(
            emu.ep(emu.p_out), handshake=emu.ep(emu.p_relay) if keyed else None, idle_timeout_s=30.0,
            max_runtime_s=300.0, handshake_timeout_s=20.0), on_block, StopFlag())))
        rx.start()
        if not keyed:
            time.sleep(0.5)
        run_tx(TxConfig(emu.ep(emu.p_in), frames=n, rate=20.0, handshake=emu.ep(emu.p_hs) if keyed else None,
                        seal=seal, handshake_timeout_s=120.0), blocks(), StopFlag())
        rx.join(300)
    finally:
        emu.stop()
    frames = [raw for raw in read_tap(tap) if decode_frame(raw).type == FrameType.DATA]
    eve = [eve_psnr(dec, raw, unpack_i(raw, k)) for k, raw in enumerate(frames)]
    out = {"how": how, "frames": n, "bob_delivered": len(bob), "bob_psnr_db": float(np.mean(list(bob.values()))),
           "eve_frames_tapped": len(frames), "eve_psnr_db": float(np.mean([e[0] for e in eve])),
           "eve_best_attempt": sorted({e[1] for e in eve}),
           "no_information_psnr_db": float(np.mean([dec.psnr(np.zeros(1, np.complex64), i) for i in range(n)]))}
    if how == "mitm":
        read = read_tap(mtap)
        out["mallory_read"] = len(read)
        out["mallory_psnr_db"] = float(np.mean([dec.psnr(unpack_data(decode_frame(r).payload)[1], k)
                                                for k, r in enumerate(read)]))
    sessions = sessions_from_tap(read_tap(tap))
    out["eve_distance"], out["eve_snr_db"] = eve_distance, eve_snr_db
    if sessions and how != "mitm":
        keys: dict[str, list] = {}
        out["eve_key_agreement"] = {}
        for d in decoders:
            name = "hard" if d[0] == "hard" else f"chase:{d[1]}"
            keys[name] = []
            out["eve_key_agreement"][name] = [attack(s, d, eve_snr_db, keys[name]) for s in sessions]
        out["eve_decrypted_psnr_db"] = {}                  # with the key she recovered (the last session's)
        for name, found in keys.items():
            if found and out["eve_key_agreement"][name][-1]["key_matched"]:
                vals = eve_decrypt_psnr(dec, frames, eve_master(sessions[-1], found[-1]))
                out["eve_decrypted_psnr_db"][name] = float(np.mean(vals))
    print(json.dumps(out), flush=True)
    return out


def unpack_i(raw: bytes, k: int) -> int:
    """The source index of a tapped frame: frames are relayed in order, one per source (no faults here)."""
    return k


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runtime_eve.json")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--distances", default="0,0.05,0.1,0.2,0.5,1.0")
    ap.add_argument("--frames", type=int, default=28)
    ap.add_argument("--skip-keys", action="store_true")
    ap.add_argument("--links", default="clear,bytes,symbols,mitm")
    ap.add_argument("--eve-decoders", default="hard,chase:6",
                    help="Eve's decoders: hard (bchlib on her own quantisation), chase:P (soft LLRs, Chase-II over P bits)")
    ap.add_argument("--eve-snr-db", type=float, default=None, help="Eve's own probing SNR (default: the probe SNR)")
    ap.add_argument("--eve-distance", type=float, default=0.5, help="Eve's distance from Bob in the process runs")
    args = ap.parse_args()
    decoders = parse_decoders(args.eve_decoders)
    torch.set_num_threads(1)
    result: dict = {"snr_db": SNR_DB, "codec": DEFAULT_IMAGE_CODEC, "eve_decoders": args.eve_decoders,
                    "eve_snr_db": args.eve_snr_db, "sessions": args.sessions}
    if not args.skip_keys:
        result["key_agreement"] = key_agreement(args.sessions, [float(x) for x in args.distances.split(",")],
                                                decoders, args.eve_snr_db)
        Path(args.out).write_text(json.dumps(result, indent=1))            # the key part survives a failed link run
    if not args.links:
        return 0
    codec = pretrained(DEFAULT_IMAGE_CODEC).eval()
    images = crops(args.frames)
    tmp = Path(args.out).resolve().parent
    result["fidelity"] = [fidelity(tmp, codec, images, how, decoders, args.eve_distance, args.eve_snr_db)
                          for how in args.links.split(",")]
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
