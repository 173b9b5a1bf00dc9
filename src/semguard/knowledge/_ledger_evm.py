"""EVM ledger: anchors in the Vyper contract ``contracts/KnowledgeAnchor.vy`` via ``web3``.

Optional extra ``semguard[ledger]`` (``vyper`` to compile, ``web3``; ``eth-tester[py-evm]`` for an
in-process chain).  Publisher mapping: EVM accounts are secp256k1 and cannot be Ed25519 keys, so a
publisher is an (Ed25519 key, EVM account) pair that the contract owner binds with
``bind_publisher``; :meth:`EvmLedger.bind_publisher` first checks an Ed25519 proof of possession
(the key signs :func:`binding_message`, naming chain, contract, kb and account).  The contract then
authorises ``msg.sender`` and enforces ``version == last + 1``; readers check the records'
Ed25519 signatures off-chain and that each anchor's key is the record's signer.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from typing import Any

from semguard.knowledge._ledger_base import (
    AnchorReceipt, AnchorRecord, LedgerUnavailable, check_hash32, kb_id_bytes,
)
from semguard.knowledge.keys import key_id, verify_signature
from semguard.knowledge.records import HistoryError, KnowledgeError, RollbackError, UnauthorizedError

__all__ = ["EvmLedger", "compile_contract", "in_process_web3", "use_private_key", "binding_message", "CONTRACT"]
log = logging.getLogger(__name__)

CONTRACT = "KnowledgeAnchor.vy"
_INSTALL = 'pip install "semguard[ledger]" (vyper, web3, eth-tester[py-evm])'
#: revert reason (substring) -> error class raised by EvmLedger
_REVERTS = (("replayed version", RollbackError), ("skipped version", HistoryError),
            ("not an authorised publisher", UnauthorizedError), ("bound to another", UnauthorizedError),
            ("only the owner", UnauthorizedError), ("unknown knowledge base", UnauthorizedError))


def _web3() -> Any:
    try:
        import web3
    except ImportError as exc:
        raise LedgerUnavailable(f"the EVM ledger needs web3: {_INSTALL}") from exc
    return web3


def _revert_types() -> tuple[type[BaseException], ...]:
    from web3.exceptions import ContractLogicError
    try:
        from eth_tester.exceptions import TransactionFailed
    except ImportError:
        return (ContractLogicError,)
    return (ContractLogicError, TransactionFailed)


@functools.lru_cache(maxsize=1)
def compile_contract() -> tuple[list, str]:
    """(ABI, deployment bytecode hex) of ``KnowledgeAnchor.vy`` compiled with ``vyper.compile_code``."""
    try:
        import vyper
    except ImportError as exc:
        raise LedgerUnavailable(f"compiling {CONTRACT} needs vyper: {_INSTALL}") from exc
    src = (importlib.resources.files("semguard.knowledge") / "contracts" / CONTRACT).read_text()
    out = vyper.compile_code(src, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def in_process_web3() -> Any:
    """A ``Web3`` on a fresh in-process chain (eth-tester with the py-evm backend; 10 funded accounts).

    The py-evm backend is asked for explicitly: eth-tester would otherwise fall back silently to a
    mock backend that cannot run contracts.
    """
    w3mod = _web3()
    try:
        from eth_tester import EthereumTester, PyEVMBackend
        from eth_tester.exceptions import BackendDistributionNotFound
    except ImportError as exc:
        raise LedgerUnavailable(f"an in-process chain needs eth-tester: {_INSTALL}") from exc
    try:
        backend = PyEVMBackend()
    except BackendDistributionNotFound as exc:
        raise LedgerUnavailable(f"an in-process chain needs py-evm: {_INSTALL}") from exc
    return w3mod.Web3(w3mod.EthereumTesterProvider(EthereumTester(backend)))


def use_private_key(w3: Any, private_key: str) -> str:
    """Sign this ``w3``'s transactions from ``private_key`` (hex secp256k1) locally; returns its address.

    For nodes that hold no unlocked account (public RPC endpoints).  The key is never logged.
    """
    from web3.middleware import SignAndSendRawMiddlewareBuilder
    acct = w3.eth.account.from_key(private_key)
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(acct), layer=0)
    return acct.address


def binding_message(chain_id: int, contract: str, kb_id: str, account: str) -> bytes:
    """Bytes an Ed25519 publisher key signs to consent to acting through EVM ``account``."""
    return f"semguard-bind|{chain_id}|{contract.lower()}|{kb_id}|{account.lower()}".encode()


class EvmLedger:
    """Anchors in a deployed ``KnowledgeAnchor`` contract, transacting as ``account``.

    Args:
        w3: a connected ``web3.Web3``.
        address: contract address (checksummed or not).
        account: EVM account that sends transactions: unlocked at the node (eth-tester and dev
            nodes) or signed locally after :func:`use_private_key`.
        timeout: seconds to wait for a transaction receipt.
    """

    def __init__(self, w3: Any, address: str, account: str, *, timeout: float = 120.0) -> None:
        abi, _ = compile_contract()
        self.w3, self.timeout = w3, timeout
        self.address = w3.to_checksum_address(address)
        self.account = w3.to_checksum_address(account)
        if not w3.eth.get_code(self.address):
            raise LedgerUnavailable(f"no contract code at {self.address} on chain {w3.eth.chain_id}")
        self.contract = w3.eth.contract(address=self.address, abi=abi)

    @classmethod
    def deploy(cls, w3: Any, owner: str | None = None, *, timeout: float = 120.0) -> EvmLedger:
        """Deploy a new contract owned by ``owner`` (default: the node's first account)."""
        abi, bytecode = compile_contract()
        owner = owner or w3.eth.accounts[0]
        tx = w3.eth.contract(abi=abi, bytecode=bytecode).constructor().transact({"from": owner})
        rcpt = w3.eth.wait_for_transaction_receipt(tx, timeout=timeout)
        log.info("deployed %s at %s (gas %d)", CONTRACT, rcpt.contractAddress, rcpt.gasUsed)
        return cls(w3, rcpt.contractAddress, owner, timeout=timeout)

    @classmethod
    def connect(cls, rpc_url: str, address: str, account: str | None = None, *, private_key: str | None = None,
                timeout: float = 10.0) -> EvmLedger:
        """Use a contract on a real chain through the JSON-RPC node at ``rpc_url``, sending as
        ``account`` (unlocked at the node) or as the address of ``private_key`` (signed locally).

        Raises:
            LedgerUnavailable: no node answers at ``rpc_url`` or no contract is at ``address``.
        """
        w3mod = _web3()
        w3 = w3mod.Web3(w3mod.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        if not w3.is_connected():
            raise LedgerUnavailable(f"{rpc_url}: no Ethereum JSON-RPC node answers (check the URL, "
                                    "the node and the network)")
        if private_key is not None:
            account = use_private_key(w3, private_key)
        if account is None:
            raise ValueError(f"{rpc_url}: give the sending account or a private key")
        return cls(w3, address, account, timeout=timeout)

    def as_account(self, account: str) -> EvmLedger:
        """The same contract, transacting as ``account``."""
        return EvmLedger(self.w3, self.address, account, timeout=self.timeout)

    def _transact(self, fn: Any, what: str) -> Any:
        try:
            tx = fn.transact({"from": self.account})
        except _revert_types() as exc:
            reason = str(exc)
            cls = next((c for r, c in _REVERTS if r in reason), KnowledgeError)
            raise cls(f"{what}: the contract reverted ({reason})") from exc
        rcpt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=self.timeout)
        if rcpt.status != 1:
            raise KnowledgeError(f"{what}: transaction {tx.hex()} was mined but reverted")
        return rcpt

    def register_kb(self, kb_id: str) -> None:
        """Register ``kb_id`` (only the contract owner may)."""
        self._transact(self.contract.functions.register_kb(kb_id_bytes(kb_id)), f"register {kb_id}")

    def bind_publisher(self, kb_id: str, account: str, publisher: bytes, proof: bytes) -> None:
        """Authorise EVM ``account`` to anchor for Ed25519 key ``publisher`` (owner only).

        ``proof`` is the key's Ed25519 signature of :func:`binding_message` (proof of possession);
        SignatureError if it does not verify.
        """
        account = self.w3.to_checksum_address(account)
        msg = binding_message(self.w3.eth.chain_id, self.address, kb_id, account)
        verify_signature(check_hash32("publisher key", publisher), msg, proof, what="publisher binding")
        self._transact(self.contract.functions.bind_publisher(kb_id_bytes(kb_id), account, publisher),
                       f"bind {account} to key {key_id(publisher)}")

    def anchor(self, kb_id: str, version: int, root: bytes, log_root: bytes, publisher: bytes,
               signature: bytes | None = None) -> AnchorReceipt:
        """Anchor ``version`` from ``self.account`` (the contract authorises the account; the
        Ed25519 ``signature`` is not sent: Ed25519 has no EVM precompile)."""
        fn = self.contract.functions.anchor(kb_id_bytes(kb_id), int(version), check_hash32("root", root),
                                            check_hash32("log_root", log_root),
                                            check_hash32("publisher key", publisher))
        rcpt = self._transact(fn, f"anchor {kb_id} v{version}")
        rec = AnchorRecord(kb_id, int(version), bytes(root), bytes(log_root), bytes(publisher),
                           self.account, int(rcpt.blockNumber))
        return AnchorReceipt(rec, rcpt.transactionHash.hex(), int(rcpt.gasUsed))

    def lookup(self, kb_id: str, version: int) -> AnchorRecord | None:
        """The anchored roots of ``version`` (one ``eth_call``), or None if never anchored."""
        root, log_root, account, key, block = self.contract.functions.get_anchor(
            kb_id_bytes(kb_id), int(version)).call()
        if int(account, 16) == 0:
            return None
        return AnchorRecord(kb_id, int(version), bytes(root), bytes(log_root), bytes(key), account, int(block))

    def latest(self, kb_id: str) -> int:
        """Last anchored version of ``kb_id`` (0 if none)."""
        return int(self.contract.functions.last_version(kb_id_bytes(kb_id)).call())
