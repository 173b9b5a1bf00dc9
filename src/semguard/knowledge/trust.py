"""Trust on first use for readers: remember which identity a source had, refuse a change.

The trust file is JSON ``{source: {"kb_id": hex, "owner": hex}}``, where ``source`` is the
location a reader syncs from (a resolved path or a URL).  The first sync records the identity;
any later one from the same location must present the same ``kb_id`` and owner key, or
:func:`check_or_pin` raises :class:`IdentityError`.  A base rebuilt whole under another key
verifies on its own, so only such a pin (or an explicit ``--kb-id/--owner``) tells it apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from semguard.knowledge.keys import key_id
from semguard.knowledge.records import IdentityError

__all__ = ["default_trust_file", "check_or_pin", "load_trust"]


def default_trust_file() -> Path:
    """``$SEMGUARD_TRUST_FILE``, else ``~/.semguard/known_kbs.json``."""
    env = os.environ.get("SEMGUARD_TRUST_FILE")
    return Path(env) if env else Path.home() / ".semguard" / "known_kbs.json"


def load_trust(path: str | Path) -> dict[str, dict[str, str]]:
    p = Path(path)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except ValueError as exc:
        raise ValueError(f"{p}: trust file is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) and {"kb_id", "owner"} <= set(v)
                                             for v in data.values()):
        raise ValueError(f'{p}: expected {{source: {{"kb_id": hex, "owner": hex}}}}')
    return data


def check_or_pin(path: str | Path, source: str, kb_id: str, owner: bytes) -> bool:
    """Pin ``source`` to ``(kb_id, owner)`` on first use (returns True), else check it (returns False)."""
    data = load_trust(path)
    known = data.get(source)
    if known is None:
        data[source] = {"kb_id": kb_id, "owner": owner.hex()}
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, p)
        return True
    if known["kb_id"] != kb_id or known["owner"] != owner.hex():
        raise IdentityError(f"{source}: identity changed since first use (was kb_id {known['kb_id']}, owner "
                            f"{key_id(bytes.fromhex(known['owner']))}; now kb_id {kb_id}, owner {key_id(owner)}); "
                            f"refusing. If the change is legitimate, remove its entry from {path}")
    return False
