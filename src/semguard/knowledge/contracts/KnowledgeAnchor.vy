# pragma version ~=0.4.3
"""
@title KnowledgeAnchor
@notice Append-only anchors of semguard knowledge-base version roots.
@dev The owner (deployer) registers a knowledge base (its 16-byte kb_id) and binds EVM accounts
     to the Ed25519 publisher keys they act for (EVM accounts are secp256k1, so an Ed25519 key
     cannot sign a transaction itself: the binding account -> key is made by the owner, after an
     off-chain proof of possession). anchor() accepts version v of a knowledge base only from a
     bound account, only for the key it is bound to, and only when v == last_version + 1:
     no rewrite, no replay, no gap. Ed25519 signatures of the records are checked off-chain.
"""

struct Anchor:
    root: bytes32
    log_root: bytes32
    publisher: address
    ed25519_key: bytes32
    block_number: uint256

event KnowledgeBaseRegistered:
    kb_id: indexed(bytes16)

event PublisherBound:
    kb_id: indexed(bytes16)
    account: indexed(address)
    ed25519_key: bytes32

event Anchored:
    kb_id: indexed(bytes16)
    version: indexed(uint256)
    root: bytes32
    log_root: bytes32
    publisher: address
    ed25519_key: bytes32

owner: public(address)
registered: public(HashMap[bytes16, bool])
publisher_key: public(HashMap[bytes16, HashMap[address, bytes32]])
last_version: public(HashMap[bytes16, uint256])
anchors: HashMap[bytes16, HashMap[uint256, Anchor]]


@deploy
def __init__():
    self.owner = msg.sender


@external
def register_kb(kb_id: bytes16):
    assert msg.sender == self.owner, "only the owner registers knowledge bases"
    assert not self.registered[kb_id], "knowledge base already registered"
    self.registered[kb_id] = True
    log KnowledgeBaseRegistered(kb_id=kb_id)


@external
def bind_publisher(kb_id: bytes16, account: address, ed25519_key: bytes32):
    """
    @notice Authorise `account` to anchor for `kb_id` on behalf of `ed25519_key`;
            ed25519_key == 0 revokes the account.
    """
    assert msg.sender == self.owner, "only the owner binds publishers"
    assert self.registered[kb_id], "unknown knowledge base"
    self.publisher_key[kb_id][account] = ed25519_key
    log PublisherBound(kb_id=kb_id, account=account, ed25519_key=ed25519_key)


@external
def anchor(kb_id: bytes16, version: uint256, root: bytes32, log_root: bytes32, ed25519_key: bytes32):
    key: bytes32 = self.publisher_key[kb_id][msg.sender]
    assert key != empty(bytes32), "not an authorised publisher"
    assert key == ed25519_key, "account is bound to another Ed25519 key"
    last: uint256 = self.last_version[kb_id]
    assert version > last, "replayed version"
    assert version == last + 1, "skipped version"
    self.last_version[kb_id] = version
    self.anchors[kb_id][version] = Anchor(root=root, log_root=log_root, publisher=msg.sender,
                                          ed25519_key=key, block_number=block.number)
    log Anchored(kb_id=kb_id, version=version, root=root, log_root=log_root, publisher=msg.sender,
                 ed25519_key=key)


@view
@external
def get_anchor(kb_id: bytes16, version: uint256) -> Anchor:
    """@notice The anchor of `version` (all zero if it was never anchored)."""
    return self.anchors[kb_id][version]
