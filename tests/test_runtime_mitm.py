"""Mallory as a real process: ``semguard channel --mitm`` runs its own key agreement with each end and
re-seals every frame.  Without authentication she reads every block Alice sends and Bob accepts her
forgeries; with pinned Ed25519 identities both ends refuse her handshake, each with one line naming
why, and no frame reaches Bob.  Every process is stopped by its pid."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from semguard.knowledge.keys import generate_key, public_bytes, save_private_key
from semguard.runtime.emulator import read_tap
from semguard.runtime.frames import FLAG_SEALED, FrameType, decode_frame, unpack_data
from semguard.runtime.tx import raw_blocks

from runtime_procs import ep, free_port, jsonl, running, start, wait_file


def _digest(iq: np.ndarray) -> str:
    return hashlib.sha256(iq.astype(np.complex64).tobytes()).hexdigest()[:32]


def _emulator(tmp_path, ports, *extra: str):
    p_in, p_out, p_hs, p_relay = ports
    proc = start("channel", "--listen", ep(p_in), "--forward", ep(p_out), "--hs-listen", ep(p_relay), "--hs-forward",
                 ep(p_hs), "--mitm", "--stats", str(tmp_path / "ch.json"), "--tap", str(tmp_path / "eve.bin"),
                 "--max-runtime", "150", *extra, log=tmp_path / "ch.log")
    wait_file(tmp_path / "ch.json", 120)
    return proc


def _rx(tmp_path, ports, *extra: str):
    return start("rx", "--connect", ep(ports[1]), "--handshake", ep(ports[3]), "--delivery-log", str(tmp_path / "rx.jsonl"),
                 "--metrics", str(tmp_path / "rx.json"), "--idle-timeout", "4", "--max-runtime", "120", *extra,
                 log=tmp_path / "rx.log")


def _tx(tmp_path, ports, *extra: str):
    return start("tx", "--connect", ep(ports[0]), "--handshake", ep(ports[2]), "--n-symbols", "64", "--frames", "40",
                 "--rate", "200", "--sent-log", str(tmp_path / "tx.jsonl"), *extra, log=tmp_path / "tx.log")


@pytest.mark.parametrize("seal", ["bytes", pytest.param("symbols", marks=pytest.mark.slow)])
def test_mallory_reads_and_forges_without_authentication(tmp_path, seal):
    ports = tuple(free_port() for _ in range(4))
    with running() as procs:
        procs.append(_emulator(tmp_path, ports, "--mitm-forge", "--mitm-tap", str(tmp_path / "mallory.bin")))
        procs.append(_rx(tmp_path, ports))
        tx = _tx(tmp_path, ports, "--seal", seal)
        procs.append(tx)
        assert tx.wait(150) == 0, (tmp_path / "tx.log").read_text()
        metrics = wait_file(tmp_path / "rx.json", 30)
    ch = wait_file(tmp_path / "ch.json", 5)
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    assert len(sent) == 40 and ch["mitm_alice_keyed"] == 1 and ch["mitm_bob_keyed"] >= 1
    assert metrics["key"]["key_source"] == "plkg" and metrics["key"]["key_bits"] >= 128
    # she read every block Alice sent, in the clear ...
    read = [decode_frame(f) for f in read_tap(tmp_path / "mallory.bin")]
    assert metrics["delivered"] == len(delivered) == 40 and metrics["rejected"] == {}
    if seal == "bytes":  # bit-exact: the AEAD carries the block
        assert {(f.epoch, f.seq): _digest(unpack_data(f.payload)[1]) for f in read} == \
            {(s["epoch"], s["seq"]): s["digest"] for s in sent}
        # ... and Bob accepted all 40 of her forgeries as Alice's: each is her negated block
        forged = {(f.epoch, f.seq): _digest(-unpack_data(f.payload)[1]) for f in read}
        assert {(d["epoch"], d["seq"]): d["digest"] for d in delivered} == forged
    else:  # the scramble cipher's float32 rotation round-trips to ~1e-7, not bit-exact: compare with tx's seeded blocks
        alice = {i: iq for i, (_, iq) in enumerate(raw_blocks(40, 64, 0))}
        got = {unpack_data(f.payload)[0]["i"]: unpack_data(f.payload)[1] for f in read}
        assert sorted(got) == list(range(40))
        assert max(float(np.abs(got[i] - alice[i]).max()) for i in alice) < 1e-5
    assert not {s["digest"] for s in sent} & {d["digest"] for d in delivered}
    # Alice's frames were sealed all the way: what Eve's tap holds of the data path is sealed only
    tapped = [decode_frame(f) for f in read_tap(tmp_path / "eve.bin")]
    assert all(f.flags & FLAG_SEALED for f in tapped if f.type == FrameType.DATA)
    print("mallory, unauthenticated:", {"read": len(read), "bob_accepted_forged": len(delivered), "emulator": ch})


@pytest.mark.parametrize("how", ["own key", pytest.param("claims the pinned keys", marks=pytest.mark.slow)])
def test_mallory_refused_with_pinned_identities(tmp_path, how):
    a, b, m = generate_key(), generate_key(), generate_key()
    for key, name in ((a, "tx"), (b, "rx"), (m, "mallory")):
        save_private_key(key, tmp_path / f"{name}.pem")
    pa, pb = public_bytes(a).hex(), public_bytes(b).hex()
    claim = ["--mitm-claim-tx", pa, "--mitm-claim-rx", pb] if how != "own key" else []
    want = "not the pinned key" if how == "own key" else "peer authentication failed"
    ports = tuple(free_port() for _ in range(4))
    with running() as procs:
        procs.append(_emulator(tmp_path, ports, "--mitm-identity", str(tmp_path / "mallory.pem"), "--mitm-forge", *claim))
        rx = _rx(tmp_path, ports, "--identity", str(tmp_path / "rx.pem"), "--peer-key", pa)
        procs.append(rx)
        assert rx.wait(120) == 2                  # Bob refused her; her hello to Alice waits in the relay
        tx = _tx(tmp_path, ports, "--identity", str(tmp_path / "tx.pem"), "--peer-key", pb, "--handshake-timeout", "8")
        procs.append(tx)
        assert tx.wait(120) == 2
        time.sleep(0.5)
    ch = wait_file(tmp_path / "ch.json", 5)
    rx_log, tx_log = (tmp_path / "rx.log").read_text(), (tmp_path / "tx.log").read_text()
    assert want in rx_log and "semguard rx: error" in rx_log
    assert want in tx_log and "no receiver completed the handshake" in tx_log
    assert ch.get("mitm_alice_keyed", 0) == 0 and ch.get("mitm_read", 0) == 0 and ch.get("forwarded", 0) == 0
    assert jsonl(tmp_path / "rx.jsonl") == [] and jsonl(tmp_path / "tx.jsonl") == []
    print("mallory, pinned:", how, {"rx": rx_log.strip().splitlines()[-1], "emulator": ch})
