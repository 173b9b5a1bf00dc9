"""Ledger anchoring: the local SQLite witness and the Vyper contract on an in-process EVM behave alike.

EVM tests need the optional extra (vyper, web3, eth-tester[py-evm]) and are skipped without it.
"""

import sqlite3

import pytest

from semguard.knowledge import (
    HistoryError, IntegrityError, KnowledgeBase, RollbackError, SignatureError, UnauthorizedError,
    generate_key, public_bytes, sync,
)
from semguard.knowledge._ledger_local import LocalLedger
from semguard.knowledge.keys import sign
from semguard.knowledge.ledger import (
    Ledger, LedgerUnavailable, anchor_message, anchor_version, check_against_ledger,
)

_EXTRA = "EVM ledger extra not installed: pip install vyper web3 'eth-tester[py-evm]'"


def _evm():
    pytest.importorskip("vyper", reason=_EXTRA)
    pytest.importorskip("web3", reason=_EXTRA)
    pytest.importorskip("eth_tester", reason=_EXTRA)
    from semguard.knowledge import _ledger_evm
    return _ledger_evm


@pytest.fixture()
def kb(kb2):
    return kb2


@pytest.fixture(scope="module")
def chain():
    """One in-process chain and deployed contract per module (deploy ~0.1 s)."""
    evm = _evm()
    w3 = evm.in_process_web3()
    return evm, w3, evm.EvmLedger.deploy(w3)


@pytest.fixture(params=["local", "evm"])
def ledgers(request, tmp_path, kb):
    """(ledger acting for the kb's publisher, ledger acting for an outsider, outsider's Ed25519 key)."""
    k, key = kb
    if request.param == "local":
        led = LocalLedger(tmp_path / "ledger.db")
        led.register_kb(k.kb_id, [public_bytes(key)])
        return led, led, generate_key()  # outsider: a key that was never registered
    evm, w3, owner_led = request.getfixturevalue("chain")
    acct, stranger = w3.eth.accounts[1], w3.eth.accounts[2]
    owner_led.register_kb(k.kb_id)
    proof = sign(key, evm.binding_message(w3.eth.chain_id, owner_led.address, k.kb_id, acct))
    owner_led.bind_publisher(k.kb_id, acct, public_bytes(key), proof)
    # outsider: the real publisher's Ed25519 key, but sent from an EVM account that is not bound
    return owner_led.as_account(acct), owner_led.as_account(stranger), key


def test_anchor_v1_v2_and_lookup(kb, ledgers):
    k, key = kb
    led, _, _ = ledgers
    assert isinstance(led, Ledger)
    assert led.latest(k.kb_id) == 0 and led.lookup(k.kb_id, 1) is None
    r1 = anchor_version(k, led, key, 1)
    r2 = anchor_version(k, led, key, 2)
    assert (r1.record.version, r2.record.version) == (1, 2) and r1.tx_hash != r2.tx_hash
    assert led.latest(k.kb_id) == 2
    for v in (1, 2):
        a = led.lookup(k.kb_id, v)
        assert (a.root, a.log_root, a.publisher) == (k.record(v).root, k.log_root(v), public_bytes(key))
    assert led.lookup(k.kb_id, 3) is None
    chk = check_against_ledger(k, led, require_current=True)
    assert (chk.local_version, chk.anchored_version, chk.checked_version, chk.current) == (2, 2, 2, True)


def test_unauthorised_publisher_rejected(kb, ledgers):
    k, _ = kb
    _, outsider, okey = ledgers
    with pytest.raises(UnauthorizedError):
        anchor_version(k, outsider, okey, 1)
    assert outsider.latest(k.kb_id) == 0


def test_replayed_and_skipped_versions_rejected(kb, ledgers):
    k, key = kb
    led, _, _ = ledgers
    with pytest.raises(HistoryError, match="skipped version|skips versions"):
        anchor_version(k, led, key, 2)  # v1 not anchored yet
    anchor_version(k, led, key, 1)
    anchor_version(k, led, key, 2)
    with pytest.raises(RollbackError, match="replayed"):
        anchor_version(k, led, key, 1)
    with pytest.raises(RollbackError, match="replayed"):  # the key holder re-anchors v2 with other roots
        led.anchor(k.kb_id, 2, bytes(32), bytes(32), public_bytes(key),
                   sign(key, anchor_message(k.kb_id, 2, bytes(32), bytes(32))))
    assert led.latest(k.kb_id) == 2
    assert led.lookup(k.kb_id, 2).root == k.record(2).root


def test_reader_detects_rewritten_history(tmp_path, kb, ledgers):
    k, key = kb
    led, _, _ = ledgers
    anchor_version(k, led, key, 1)
    anchor_version(k, led, key, 2)
    # the owner key signs a fork: v1 replayed from the same bytes, v2 with other content
    fork = KnowledgeBase.init_replica(tmp_path / "fork.db", k.genesis())
    fork.publish(key, {"vocab": b'{"a": 1}', "codebook": b"\x01\x02\x03"})
    fork.publish(key, {"weights": b"evil" * 25}, ["codebook"])
    assert fork.verify().kb_id == k.kb_id  # locally the fork is a valid signed log
    with pytest.raises(HistoryError, match="entry root"):
        check_against_ledger(fork, led)
    # same entries as the anchored v2 but a different record (note): only the log root differs
    same = KnowledgeBase.init_replica(tmp_path / "same.db", k.genesis())
    same.publish(key, {"vocab": b'{"a": 1}', "codebook": b"\x01\x02\x03"})
    same.publish(key, {"weights": b"w" * 100}, ["codebook"], note="rewritten")
    assert same.record(2).root == k.record(2).root
    with pytest.raises(HistoryError, match="log root"):
        check_against_ledger(same, led)


def test_reader_behind_is_a_prefix_but_not_current(tmp_path, kb, ledgers):
    k, key = kb
    led, _, _ = ledgers
    reader = KnowledgeBase.init_replica(tmp_path / "reader.db", k.genesis())
    sync(reader, k)
    k.publish(key, {"weights": b"v3" * 50})
    for v in (1, 2, 3):
        anchor_version(k, led, key, v)
    chk = check_against_ledger(reader, led)
    assert (chk.local_version, chk.anchored_version, chk.checked_version, chk.current) == (2, 3, 2, False)
    with pytest.raises(RollbackError, match="stale"):
        check_against_ledger(reader, led, require_current=True)


# ---------------------------------------------------------------- local-only
def test_local_ledger_needs_valid_signature_and_detects_edited_rows(tmp_path, kb):
    k, key = kb
    led = LocalLedger(tmp_path / "ledger.db")
    led.register_kb(k.kb_id, [public_bytes(key)])
    with pytest.raises(SignatureError):
        led.anchor(k.kb_id, 1, k.record(1).root, k.log_root(1), public_bytes(key), None)
    with pytest.raises(SignatureError):
        led.anchor(k.kb_id, 1, k.record(1).root, k.log_root(1), public_bytes(key), sign(key, b"other"))
    anchor_version(k, led, key, 1)
    c = sqlite3.connect(led.path)
    c.execute("UPDATE ledger_anchors SET root = ? WHERE version = 1", (bytes(32),))
    c.commit()
    c.close()
    with pytest.raises(IntegrityError, match="altered"):
        led.lookup(k.kb_id, 1)


# ---------------------------------------------------------------- EVM-only
def test_contract_itself_reverts_and_only_owner_administers(kb, chain):
    evm, w3, owner_led = chain
    from eth_tester.exceptions import TransactionFailed
    k, key = kb
    acct, stranger = w3.eth.accounts[3], w3.eth.accounts[4]
    owner_led.register_kb(k.kb_id)
    proof = sign(key, evm.binding_message(w3.eth.chain_id, owner_led.address, k.kb_id, acct))
    with pytest.raises(UnauthorizedError, match="only the owner"):
        owner_led.as_account(stranger).bind_publisher(k.kb_id, acct, public_bytes(key), proof)
    with pytest.raises(SignatureError):  # proof of possession signed for another account
        owner_led.bind_publisher(k.kb_id, stranger, public_bytes(key), proof)
    assert owner_led.contract.functions.publisher_key(bytes.fromhex(k.kb_id), stranger).call() == bytes(32)
    owner_led.bind_publisher(k.kb_id, acct, public_bytes(key), proof)
    fn = owner_led.contract.functions.anchor(bytes.fromhex(k.kb_id), 1, k.record(1).root, k.log_root(1),
                                             public_bytes(key))
    with pytest.raises(TransactionFailed, match="not an authorised publisher"):  # raw web3, no wrapper
        fn.transact({"from": stranger})
    with pytest.raises(TransactionFailed, match="bound to another Ed25519 key"):
        owner_led.contract.functions.anchor(bytes.fromhex(k.kb_id), 1, k.record(1).root, k.log_root(1),
                                            bytes(range(32))).transact({"from": acct})
    rcpt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": acct}))
    ev = owner_led.contract.events.Anchored().process_receipt(rcpt)[0]["args"]
    assert (ev["version"], ev["root"], ev["log_root"], ev["publisher"]) == (
        1, k.record(1).root, k.log_root(1), acct)


def test_unreachable_rpc_is_a_clear_error():
    evm = _evm()
    with pytest.raises(LedgerUnavailable, match="no Ethereum JSON-RPC node"):
        evm.EvmLedger.connect("http://127.0.0.1:9", "0x" + "00" * 20, "0x" + "00" * 20, timeout=2.0)


def test_no_contract_at_address(chain):
    evm, w3, _ = chain
    with pytest.raises(LedgerUnavailable, match="no contract code"):
        evm.EvmLedger(w3, w3.eth.accounts[5], w3.eth.accounts[0])


# ---------------------------------------------------------------- CLI: semguard kb anchor
def _cli(*argv):
    import argparse

    from semguard.cli import kb as cli
    ap = argparse.ArgumentParser()
    cli.add_parser(ap.add_subparsers(dest="cmd"))
    return cli.run(ap.parse_args(["kb", *argv]))


def test_cli_anchor_local_then_detects_fork(tmp_path, capsys):
    db, key, led = str(tmp_path / "kb.db"), str(tmp_path / "owner.pem"), str(tmp_path / "ledger.db")
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    assert _cli("init", db, "--key", key) == 0
    assert _cli("publish", db, "--key", key, "--put", f"w={f}") == 0
    assert _cli("publish", db, "--key", key, "--put", f"v={f}") == 0
    assert _cli("anchor", db, "--ledger", led, "--register", "--key", key) == 0
    assert _cli("anchor", db, "--ledger", led) == 0
    out = capsys.readouterr().out
    assert "anchored v1" in out and "anchored v2" in out and "local v2 is current with the ledger (anchored v2)" in out
    # rewrite v2 under the owner key in place: drop it and publish different content
    c = sqlite3.connect(db)
    c.execute("DELETE FROM versions WHERE version = 2")
    c.execute("DELETE FROM entries WHERE version = 2")
    c.commit()
    c.close()
    f.write_bytes(b"evil")
    assert _cli("publish", db, "--key", key, "--put", f"v={f}") == 0
    assert _cli("verify", db) == 0  # a valid signed log on its own
    assert _cli("anchor", db, "--ledger", led, "--key", key) == 2
    assert "HistoryError" in capsys.readouterr().err
    assert _cli("anchor", db, "--rpc", "http://127.0.0.1:9") == 2
    assert "needs the contract address" in capsys.readouterr().err


def test_locally_signed_account_anchors(kb):
    """Real-chain code path without a node-held account: a fresh secp256k1 key signs its transactions."""
    evm = _evm()
    k, key = kb
    w3 = evm.in_process_web3()
    fresh = w3.eth.account.create()
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": fresh.address, "value": 10**18}))
    assert w3.eth.get_transaction_count(fresh.address) == 0
    assert evm.use_private_key(w3, fresh.key.hex()) == fresh.address
    owner = evm.EvmLedger.deploy(w3)
    owner.register_kb(k.kb_id)
    owner.bind_publisher(k.kb_id, fresh.address, public_bytes(key),
                         sign(key, evm.binding_message(w3.eth.chain_id, owner.address, k.kb_id, fresh.address)))
    r = anchor_version(k, owner.as_account(fresh.address), key, 1)
    assert r.record.account == fresh.address and w3.eth.get_transaction_count(fresh.address) == 1
    assert owner.lookup(k.kb_id, 1).log_root == k.log_root(1)
