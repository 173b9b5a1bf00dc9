"""tx, channel emulator and rx as real processes on 127.0.0.1, with faults injected: every delivered
frame is delivered once and equals what was sent; replays, forgeries and malformed frames are
counted; the emulator and the receiver are killed mid-stream and restarted."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from semguard.knowledge.keys import generate_key, public_bytes, save_private_key

from semguard.runtime.emulator import read_tap
from semguard.runtime.plkg_eve import eve_attempt, sessions_from_tap
from semguard.runtime.relay import EVE_PROBE
from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, FrameError, FrameType, decode_frame, unpack_data

from runtime_procs import ep, free_port, jsonl, running, start, stop, wait_file



def _keys(tmp_path):
    a, b = generate_key(), generate_key()
    save_private_key(a, tmp_path / "tx.pem")
    save_private_key(b, tmp_path / "rx.pem")
    return public_bytes(a).hex(), public_bytes(b).hex()


def _check_once_and_intact(sent, delivered):
    by_key = {(s["epoch"], s["seq"]): s["digest"] for s in sent}
    keys = [(d["epoch"], d["seq"]) for d in delivered]
    twice = [k for k, c in Counter(keys).items() if c > 1]
    corrupted = [d for d in delivered if by_key.get((d["epoch"], d["seq"])) != d["digest"]]
    assert twice == [] and corrupted == []
    assert len({d["i"] for d in delivered}) == len(delivered)  # no source block twice, across epochs too


def _parses(raw: bytes) -> bool:
    try:
        decode_frame(raw)
        return True
    except FrameError:
        return False


def _eve_digest(payload: bytes) -> str | None:
    """Eve's best reading of a payload as a clear DATA block (None if it does not parse)."""
    import hashlib
    try:
        return hashlib.sha256(unpack_data(payload)[1].tobytes()).hexdigest()[:32]
    except FrameError:
        return None


@pytest.mark.parametrize("channel", [None, pytest.param("awgn", marks=pytest.mark.slow)])
def test_clear_link_eve_sees_what_bob_sees(tmp_path, channel):
    """Security off: Bob gets every block once (through AWGN at 10 dB applied by the emulator, in the
    slow case), and Eve's tap holds exactly Bob's blocks (tap fidelity 1.0) -- the baseline the
    sealed link removes."""
    p_in, p_out = free_port(), free_port()
    extra = ["--channel", channel, "--snr-db", "10"] if channel else []
    with running() as procs:
        procs.append(start("channel", "--listen", ep(p_in), "--forward", ep(p_out), *extra, "--stats",
                           str(tmp_path / "ch.json"), "--tap", str(tmp_path / "eve.bin"), "--max-runtime", "60",
                           log=tmp_path / "ch.log"))
        wait_file(tmp_path / "ch.json", 60)
        procs.append(start("rx", "--connect", ep(p_out), "--delivery-log", str(tmp_path / "rx.jsonl"),
                           "--metrics", str(tmp_path / "rx.json"), "--idle-timeout", "3", "--max-runtime", "30",
                           log=tmp_path / "rx.log"))
        time.sleep(1.0)
        tx = start("tx", "--connect", ep(p_in), "--frames", "60", "--rate", "200", "--n-symbols", "64",
                   "--sent-log", str(tmp_path / "tx.jsonl"), log=tmp_path / "tx.log")
        procs.append(tx)
        assert tx.wait(30) == 0, (tmp_path / "tx.log").read_text()
        metrics = wait_file(tmp_path / "rx.json", 20)
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    assert metrics["delivered"] == len(delivered) == len(sent) == 60
    assert len({(d["epoch"], d["seq"]) for d in delivered}) == 60
    sent_d, got_d = {s["digest"] for s in sent}, {d["digest"] for d in delivered}
    if channel:  # noise changed every block, so no delivered digest equals a sent one
        assert not sent_d & got_d
    else:
        assert sent_d == got_d
    eve = {_eve_digest(decode_frame(f).payload) for f in read_tap(tmp_path / "eve.bin")}
    assert {d["digest"] for d in delivered} <= eve


def _kb(tmp_path):
    """One signed knowledge base, a copy per end."""
    import shutil

    from semguard.knowledge.store import KnowledgeBase
    owner = generate_key()
    kb = KnowledgeBase.init(tmp_path / "kb_tx.db", owner)
    kb.publish(owner, {"prior": b"shared"})
    kb.close()
    shutil.copy(tmp_path / "kb_tx.db", tmp_path / "kb_rx.db")


def _plkg_link(tmp_path, ch_extra: list[str], rx_extra: list[str], tx_extra: list[str]) -> tuple[dict, dict]:
    """Emulator (with the handshake relay), rx and tx as processes, PLKG keys, identities pinned both
    ways; returns (rx metrics, emulator stats) after tx ended.  Every process is stopped by its pid."""
    pa, pb = _keys(tmp_path)
    p_in, p_out, p_hs, p_relay = free_port(), free_port(), free_port(), free_port()
    with running() as procs:
        procs.append(start("channel", "--listen", ep(p_in), "--forward", ep(p_out), "--hs-listen", ep(p_relay),
                           "--hs-forward", ep(p_hs), "--stats", str(tmp_path / "ch.json"), "--max-runtime", "120",
                           "--tap", str(tmp_path / "eve.bin"), *ch_extra, log=tmp_path / "ch.log"))
        wait_file(tmp_path / "ch.json", 120)  # bound (the relay loads torch)
        procs.append(start("rx", "--connect", ep(p_out), "--handshake", ep(p_relay), "--identity", str(tmp_path / "rx.pem"),
                           "--peer-key", pa, "--delivery-log", str(tmp_path / "rx.jsonl"), "--metrics",
                           str(tmp_path / "rx.json"), "--idle-timeout", "4", "--max-runtime", "120", *rx_extra,
                           log=tmp_path / "rx.log"))
        tx = start("tx", "--connect", ep(p_in), "--handshake", ep(p_hs), "--identity", str(tmp_path / "tx.pem"),
                   "--peer-key", pb, "--n-symbols", "64", "--sent-log", str(tmp_path / "tx.jsonl"), *tx_extra,
                   log=tmp_path / "tx.log")
        procs.append(tx)
        assert tx.wait(150) == 0, (tmp_path / "tx.log").read_text()
        metrics = wait_file(tmp_path / "rx.json", 30)
    return metrics, wait_file(tmp_path / "ch.json", 5)


def test_faults_counted_nothing_twice_nothing_corrupted(tmp_path):
    """The PLKG key source through the emulator's handshake relay, signed knowledge roots, then 5 % of
    each fault on the data path."""
    _kb(tmp_path)
    metrics, ch = _plkg_link(
        tmp_path, ["--drop", "0.05", "--duplicate", "0.05", "--reorder", "0.05", "--bitflip", "0.05", "--seed", "1",
                   "--eve-distance", "0.5"],
        ["--kb", str(tmp_path / "kb_rx.db")],
        ["--frames", "400", "--rate", "400", "--epoch-frames", "150", "--kb", str(tmp_path / "kb_tx.db")])
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    assert len(sent) == 400
    _check_once_and_intact(sent, delivered)
    lost = len(sent) - len(delivered)
    # every loss is explained by a drop or a bit flip the receiver refused
    assert 0 < lost <= ch.get("dropped", 0) + ch.get("bitflipped", 0) + ch.get("overflow", 0)
    assert metrics["key"]["key_source"] == "plkg" and metrics["key"]["key_bits"] >= 128
    assert ch["probe_blocks"] >= 2
    rej = metrics["rejected"]
    assert rej.get("replay", 0) >= 1  # duplicates
    assert rej.get("forged", 0) + metrics.get("malformed", 0) >= 1  # bit flips
    # Eve's tap: every frame she received is sealed; none yields an IQ block Bob delivered
    tapped = [decode_frame(f) for f in read_tap(tmp_path / "eve.bin") if _parses(f)]
    hs = [json.loads(f.payload) for f in tapped if f.type == FrameType.HANDSHAKE]
    n_hs = sum(m.get("m") != EVE_PROBE for m in hs)
    assert n_hs >= 8 and n_hs % 2 == 0                                  # she heard the public discussion ...
    assert sum(m.get("m") == EVE_PROBE for m in hs) == n_hs // 8        # ... and probed Alice herself, per session
    eve = [f for f in tapped if f.type != FrameType.HANDSHAKE]
    assert len(eve) >= 300 and all(f.flags & FLAG_SEALED for f in eve)  # ... and sees only sealed frames
    bob = {d["digest"] for d in delivered}
    assert not bob & {_eve_digest(f.payload) for f in eve}
    # she runs the key agreement herself (0.5 wavelengths from Bob): no session's key passes Alice's tag
    tries = [eve_attempt(s) for s in sessions_from_tap(read_tap(tmp_path / "eve.bin"))]
    assert tries and not any(t.key_matched for t in tries) and min(t.sample_disagreement for t in tries) > 0.3
    print("faults:", {"sent": len(sent), "delivered_once": len(delivered), "lost": lost, "rejected": rej,
                      "eve": [t.to_dict() for t in tries],
                      "malformed": metrics.get("malformed", 0), "emulator": ch})


@pytest.mark.slow
def test_emulator_and_receiver_killed_midstream(tmp_path):
    pa, pb = _keys(tmp_path)
    p_in, p_out, p_hs, p_relay = free_port(), free_port(), free_port(), free_port()
    ch_args = ["channel", "--listen", ep(p_in), "--forward", ep(p_out), "--hs-listen", ep(p_relay), "--hs-forward",
               ep(p_hs), "--max-runtime", "300"]
    rx_args = ["rx", "--connect", ep(p_out), "--handshake", ep(p_relay), "--identity", str(tmp_path / "rx.pem"),
               "--peer-key", pa, "--delivery-log", str(tmp_path / "rx.jsonl"), "--idle-timeout", "60",
               "--max-runtime", "240"]
    with running() as procs:
        ch = start(*ch_args, "--stats", str(tmp_path / "ch1.json"), log=tmp_path / "ch1.log")
        procs.append(ch)
        wait_file(tmp_path / "ch1.json", 120)  # bound (the relay loads torch: slow on a loaded machine)
        rx = start(*rx_args, "--metrics", str(tmp_path / "rx1.json"), log=tmp_path / "rx1.log")
        procs.append(rx)
        tx = start("tx", "--connect", ep(p_in), "--handshake", ep(p_hs), "--identity", str(tmp_path / "tx.pem"),
                   "--peer-key", pb, "--frames", "3000", "--rate", "40", "--n-symbols", "64",
                   "--sent-log", str(tmp_path / "tx.jsonl"), log=tmp_path / "tx.log")
        procs.append(tx)
        def n_delivered():
            return len(jsonl(tmp_path / "rx.jsonl"))
        t = time.monotonic() + 200
        while n_delivered() < 100 and time.monotonic() < t:
            time.sleep(0.1)
        stop(ch, signal.SIGKILL)  # emulator killed ...
        time.sleep(0.5)
        ch = start(*ch_args, "--stats", str(tmp_path / "ch2.json"), log=tmp_path / "ch2.log")  # ... and restarted
        procs.append(ch)
        wait_file(tmp_path / "ch2.json", 120)
        mark = n_delivered()
        while n_delivered() < mark + 100 and time.monotonic() < t:
            time.sleep(0.1)
        stop(rx, signal.SIGKILL)  # receiver killed mid-stream ...
        time.sleep(0.5)
        rx = start(*rx_args, "--idle-timeout", "8", "--metrics", str(tmp_path / "rx2.json"), log=tmp_path / "rx2.log")
        procs.append(rx)
        assert tx.wait(240) == 0, (tmp_path / "tx.log").read_text()
        m2 = wait_file(tmp_path / "rx2.json", 60)
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    _check_once_and_intact(sent, delivered)
    assert m2["resumed_from_log"] >= 200 and m2.get("delivered", 0) > 0
    assert len({d["epoch"] for d in delivered}) == 2  # the restarted receiver re-keyed into epoch 1
    print("kills:", {"sent": len(sent), "delivered_once": len(delivered), "lost": len(sent) - len(delivered),
                     "rx2": m2})


@pytest.mark.slow
def test_processes_refuse_an_unpinned_transmitter(tmp_path):
    """A transmitter whose identity is not the one rx pinned (Mallory's) gets no session: rx exits 2
    naming the failed pin, and delivers nothing."""
    _, pb = _keys(tmp_path)
    save_private_key(generate_key(), tmp_path / "mallory.pem")
    p_in, p_hs = free_port(), free_port()
    with running() as procs:
        tx = start("tx", "--connect", ep(p_in), "--handshake", ep(p_hs), "--identity", str(tmp_path / "mallory.pem"),
                   "--peer-key", pb, "--frames", "10", "--key-source", "x25519", log=tmp_path / "tx.log")
        rx = start("rx", "--connect", ep(p_in), "--handshake", ep(p_hs), "--identity", str(tmp_path / "rx.pem"),
                   "--key-source", "x25519",
                   "--peer-key", public_bytes(generate_key()).hex(), "--delivery-log", str(tmp_path / "rx.jsonl"),
                   log=tmp_path / "rx.log")
        procs += [tx, rx]
        assert rx.wait(60) == 2
    assert "pinned" in (tmp_path / "rx.log").read_text() or "authentication" in (tmp_path / "rx.log").read_text()
    assert jsonl(tmp_path / "rx.jsonl") == []


@pytest.mark.slow
def test_sealed_symbols_take_the_channel_and_a_jammer_at_the_emulator(tmp_path):
    """--seal symbols: the emulator applies AWGN and Gaussian jamming at -10 dB PSR (measured at the
    receiver's input) to sealed frames; Bob gets every frame once, Eve's tap holds only scrambled symbols."""
    metrics, ch = _plkg_link(tmp_path, ["--channel", "awgn", "--snr-db", "20", "--attack", "gaussian", "--psr-db", "-10"],
                             [], ["--frames", "40", "--rate", "200", "--seal", "symbols"])
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    assert metrics["delivered"] == len(delivered) == len(sent) == 40 and metrics["rejected"] == {}
    assert len({(d["epoch"], d["seq"]) for d in delivered}) == 40
    assert ch["channel_applied"] == 40 and ch["psr_db_measured_mean"] == pytest.approx(-10.0, abs=1e-3)
    assert not {s["digest"] for s in sent} & {d["digest"] for d in delivered}   # the channel acted on them
    eve = [decode_frame(f) for f in read_tap(tmp_path / "eve.bin") if _parses(f)]
    assert sum(1 for f in eve if f.flags & FLAG_SYMBOLS) == 40
