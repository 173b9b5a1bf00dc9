"""The handshake's knowledge sync verifies the peer's signed root: a valid record of our base at our
version passes; a forged signature, a record signed by a non-publisher, another version or an unsigned
peer are refused with a one-line reason."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from semguard.knowledge.keys import generate_key, sign
from semguard.knowledge.store import KnowledgeBase
from semguard.runtime.handshake import Handshake, HandshakeError, run_direct
from semguard.runtime.kbview import KbMismatch, KbView, kb_view


@pytest.fixture(scope="module")
def kbs(tmp_path_factory):
    d = tmp_path_factory.mktemp("kb")
    owner = generate_key()
    kb = KnowledgeBase.init(d / "a.db", owner)
    kb.publish(owner, {"prior": b"v1"})
    kb.close()  # (a closed base has no WAL left to miss in a copy)
    shutil.copy(d / "a.db", d / "v1.db")
    kb = KnowledgeBase(d / "a.db")
    kb.publish(owner, {"prior": b"v2"})
    kb.close()
    shutil.copy(d / "a.db", d / "b.db")
    return kb_view(d / "a.db"), kb_view(d / "b.db"), kb_view(d / "v1.db"), owner


def test_same_signed_base_agrees_and_the_x25519_handshake_runs(kbs):
    a, b, _, _ = kbs
    assert a.signed and a.version == 2 and a.to_dict()["record"]["signature"]
    a.check_peer(b.to_dict())
    m_tx, m_rx = run_direct(Handshake("tx", a), Handshake("rx", b))
    assert m_tx == m_rx


def test_refusals_name_the_reason(kbs):
    a, _, v1, owner = kbs
    with pytest.raises(KbMismatch, match="mismatch: ours .* v2 .* peer's \\(signed\\) .* v1"):
        a.check_peer(v1.to_dict())
    peer = a.to_dict()
    bad = dict(peer, record={**peer["record"], "signature": "00" * 64})
    with pytest.raises(KbMismatch, match="signature"):
        a.check_peer(bad)
    # a record re-signed by a key that is not a publisher of our base (the signature itself is valid)
    mallory = generate_key()
    from semguard.knowledge.keys import public_bytes
    rec = dataclasses.replace(a.record, publisher=public_bytes(mallory), signature=b"")
    rec = dataclasses.replace(rec, signature=sign(mallory, rec.signing_bytes()))
    with pytest.raises(KbMismatch, match="not a publisher"):
        a.check_peer(dict(peer, record=rec.to_json()))
    with pytest.raises(KbMismatch, match="no signed root"):
        a.check_peer({"id": a.kb_id, "version": a.version, "root": a.root})
    with pytest.raises(HandshakeError, match="knowledge base"):
        run_direct(Handshake("tx", a), Handshake("rx", KbView(a.kb_id, a.version, a.root)))
    # the owner signing another root for the same version is still a mismatch of roots
    rec2 = dataclasses.replace(a.record, root=b"\x01" * 32, signature=b"")
    rec2 = dataclasses.replace(rec2, signature=sign(owner, rec2.signing_bytes()))
    with pytest.raises(KbMismatch, match="mismatch"):
        a.check_peer(dict(peer, record=rec2.to_json(), root=rec2.root.hex()))
