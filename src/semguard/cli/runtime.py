"""semguard tx / channel / rx: the semantic link as three processes over ZeroMQ on 127.0.0.1.

``semguard channel`` binds the two relay endpoints, ``semguard tx`` connects to its listen
endpoint and binds the handshake endpoint, ``semguard rx`` connects to the channel's forward
endpoint and the transmitter's handshake.  Identities are Ed25519 PEM files (``semguard kb``'s
key format); the peer is pinned by its 32-byte public key in hex.  Each prints its counters as
JSON when it ends.
"""

from __future__ import annotations

import argparse
import json
import sys

from semguard.cli.common import finite_float, int_at_least, non_negative_float, positive_float
from semguard.knowledge.keys import load_private_key
from semguard.runtime.emulator import EmulatorConfig, run_emulator
from semguard.runtime.handshake import KbView
from semguard.runtime.kbview import kb_view
from semguard.runtime.rx import RxConfig, run_rx
from semguard.runtime.tx import TxConfig, run_tx

__all__ = ["add_parser", "run"]


def _prob(text: str) -> float:
    p = float(text)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return p


def _security(p: argparse.ArgumentParser) -> None:
    p.add_argument("--handshake", help="handshake endpoint tcp://127.0.0.1:PORT (omit: clear frames, security off)")
    p.add_argument("--identity", help="this side's Ed25519 private key (PEM)")
    p.add_argument("--peer-key", help="the peer's Ed25519 public key, 64 hex digits (omit: unauthenticated)")
    p.add_argument("--key-source", choices=("plkg", "x25519"), default="plkg",
                   help="session key: plkg (probes through the emulator's --hs-listen) or x25519")
    p.add_argument("--probes", type=int_at_least(256, 65536), default=4096, help="plkg: probes each way")
    p.add_argument("--kb", help="knowledge base file: its signed root (version record) is sent and the peer's verified")
    p.add_argument("--kb-id", default="none", help="unsigned kb id (without --kb)")
    p.add_argument("--kb-version", type=int_at_least(0), default=0)
    p.add_argument("--kb-root", default="")


def add_parser(sub: argparse._SubParsersAction) -> None:
    tx = sub.add_parser("tx", help="transmitter process: blocks -> sealed frames -> ZeroMQ")
    tx.add_argument("--connect", required=True, help="channel emulator listen endpoint")
    tx.add_argument("--frames", type=int_at_least(1, 10_000_000), default=100)
    tx.add_argument("--n-symbols", type=int_at_least(1, 1 << 20), default=256)
    tx.add_argument("--rate", type=non_negative_float, default=0.0, help="frames per second (0: as fast as possible)")
    tx.add_argument("--epoch-frames", type=int_at_least(0), default=0, help="re-key every N frames (0: on handshake only)")
    tx.add_argument("--seed", type=int_at_least(0), default=0)
    tx.add_argument("--sent-log", help="JSONL of what was sent (no key material)")
    tx.add_argument("--handshake-timeout", type=positive_float, default=120.0,
                    help="seconds to wait for a receiver to complete the handshake")
    tx.add_argument("--seal", choices=("bytes", "symbols"), default="bytes",
                    help="bytes: AEAD over the whole payload; symbols: AEAD over the side info, IQ keyed-scrambled "
                         "(the emulator's channel can act on it)")
    _security(tx)
    tx.set_defaults(func=_run_tx)

    ch = sub.add_parser("channel", help="channel emulator: relay, faults, registered channel, Eve's tap")
    ch.add_argument("--listen", required=True)
    ch.add_argument("--forward", required=True)
    for name in ("drop", "duplicate", "reorder", "bitflip"):
        ch.add_argument(f"--{name}", type=_prob, default=0.0, help=f"probability a frame is {name}ped/ed")
    ch.add_argument("--seed", type=int_at_least(0), default=0)
    ch.add_argument("--channel", help="registered channel applied to clear and --seal symbols IQ (semguard list channel)")
    ch.add_argument("--snr-db", type=finite_float, default=20.0)
    ch.add_argument("--attack", choices=("gaussian", "universal"), help="blind registered attack radiated on the IQ")
    ch.add_argument("--psr-db", type=finite_float, help="attack budget: perturbation-to-signal ratio at the receiver")
    ch.add_argument("--attack-file", help="universal: the learned block (safetensors, 'delta' [n, 2])")
    ch.add_argument("--hs-listen", help="handshake relay endpoint rx connects to (with --hs-forward)")
    ch.add_argument("--hs-forward", help="the transmitter's --handshake endpoint")
    ch.add_argument("--probe-doppler-hz", type=non_negative_float, default=100.0)
    ch.add_argument("--probe-snr-db", type=finite_float, default=30.0)
    ch.add_argument("--gnuradio-out", help="GNU Radio bridge: bind tcp://127.0.0.1:PORT, a zeromq.pull_source reads "
                    "each DATA frame's IQ (complex64) here (with --gnuradio-in)")
    ch.add_argument("--gnuradio-in", help="GNU Radio bridge: the flowgraph's zeromq.push_sink address (connected)")
    ch.add_argument("--gnuradio-timeout", type=positive_float, default=2.0,
                    help="seconds without a returned sample before the frames in the flowgraph are counted lost")
    ch.add_argument("--gnuradio-max-pending", type=int_at_least(1, 1 << 16), default=256,
                    help="frames in the flowgraph at once (more are dropped, counted)")
    ch.add_argument("--tap", help="file receiving every relayed frame (what Eve receives)")
    ch.add_argument("--eve-distance", type=non_negative_float,
                    help="with --tap: Eve this many wavelengths from Bob overhears Alice's probes (tapped)")
    ch.add_argument("--eve-snr-db", type=finite_float, help="Eve's probing SNR (default: --probe-snr-db)")
    ch.add_argument("--mitm", action="store_true",
                    help="Mallory in the handshake relay: her own key agreement with each end, re-sealing frames")
    ch.add_argument("--mitm-identity", help="Mallory's own Ed25519 private key (PEM)")
    ch.add_argument("--mitm-claim-tx", help="the identity Mallory announces to rx (64 hex digits: Alice's public key)")
    ch.add_argument("--mitm-claim-rx", help="the identity Mallory announces to tx (64 hex digits: Bob's public key)")
    ch.add_argument("--mitm-forge", action="store_true", help="Mallory negates every IQ block she relays")
    ch.add_argument("--mitm-tap", help="file receiving what Mallory read (clear DATA frames)")
    ch.add_argument("--stats", help="JSON counters (rewritten every second)")
    ch.add_argument("--max-runtime", type=positive_float, default=600.0, help="seconds before it stops by itself")
    ch.set_defaults(func=_run_channel)

    rx = sub.add_parser("rx", help="receiver process: ZeroMQ -> open -> deliver once, with metrics")
    rx.add_argument("--connect", required=True, help="channel emulator forward endpoint")
    rx.add_argument("--window", type=int_at_least(1, 1 << 16), default=64, help="replay window (1: strict order)")
    rx.add_argument("--delivery-log", help="JSONL of delivered frames (resumed on restart)")
    rx.add_argument("--metrics", help="JSON metrics file")
    rx.add_argument("--idle-timeout", type=positive_float, default=3.0)
    rx.add_argument("--max-runtime", type=positive_float, default=120.0)
    _security(rx)
    rx.set_defaults(func=_run_rx)


def _public_key(text: str | None, flag: str) -> bytes | None:
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{flag}: expected 64 hex digits, got {text!r}") from None
    if len(key) != 32:
        raise ValueError(f"{flag}: expected 32 bytes (64 hex digits), got {len(key)}")
    return key


def _identity(args: argparse.Namespace) -> dict:
    peer = _public_key(args.peer_key, "--peer-key")
    kb = kb_view(args.kb) if args.kb else KbView(args.kb_id, args.kb_version, args.kb_root)
    plkg = None
    if args.key_source == "plkg" and args.handshake:
        from semguard.runtime.plkg import PlkgConfig
        plkg = PlkgConfig(n_probes=args.probes)
    return {"handshake": args.handshake, "identity": load_private_key(args.identity) if args.identity else None,
            "peer_public": peer, "kb": kb, "key_source": args.key_source, "plkg": plkg}


def _run_tx(args: argparse.Namespace) -> int:
    cfg = TxConfig(args.connect, frames=args.frames, n_symbols=args.n_symbols, rate=args.rate,
                   epoch_frames=args.epoch_frames, seed=args.seed, sent_log=args.sent_log, seal=args.seal,
                   handshake_timeout_s=args.handshake_timeout,
                   **_identity(args))
    print(json.dumps(run_tx(cfg)))
    return 0


def _run_channel(args: argparse.Namespace) -> int:
    cfg = EmulatorConfig(args.listen, args.forward, drop=args.drop, duplicate=args.duplicate, reorder=args.reorder,
                         bitflip=args.bitflip, seed=args.seed, channel=args.channel, snr_db=args.snr_db,
                         attack=args.attack, psr_db=args.psr_db, attack_file=args.attack_file,
                         hs_listen=args.hs_listen, hs_forward=args.hs_forward,
                         probe_doppler_hz=args.probe_doppler_hz, probe_snr_db=args.probe_snr_db, tap=args.tap, stats=args.stats, max_runtime_s=args.max_runtime,
                         gnuradio_out=args.gnuradio_out, gnuradio_in=args.gnuradio_in,
                         gnuradio_timeout_s=args.gnuradio_timeout, gnuradio_max_pending=args.gnuradio_max_pending,
                         eve_distance=args.eve_distance, eve_snr_db=args.eve_snr_db, mitm=args.mitm,
                         mitm_identity=load_private_key(args.mitm_identity) if args.mitm_identity else None,
                         mitm_claim_tx=_public_key(args.mitm_claim_tx, "--mitm-claim-tx"),
                         mitm_claim_rx=_public_key(args.mitm_claim_rx, "--mitm-claim-rx"),
                         mitm_forge=args.mitm_forge, mitm_tap=args.mitm_tap)
    print(json.dumps(run_emulator(cfg)))
    return 0


def _run_rx(args: argparse.Namespace) -> int:
    cfg = RxConfig(args.connect, window=args.window, delivery_log=args.delivery_log, metrics=args.metrics,
                   idle_timeout_s=args.idle_timeout, max_runtime_s=args.max_runtime, **_identity(args))
    print(json.dumps(run_rx(cfg)))
    sys.stdout.flush()
    return 0


def run(args: argparse.Namespace) -> int:  # each command sets its own func
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """``python -m semguard.cli.runtime tx|channel|rx ...``: the same commands without importing the
    rest of the CLI (and torch), so a restarted process is up in about a second."""
    import logging
    parser = argparse.ArgumentParser(prog="semguard")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as e:
        print(f"semguard {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
