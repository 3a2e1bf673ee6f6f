"""Rule match ids as Felix v3.30+ computes them with flow logs off: FNV-1a 64 of the NFLOG prefix.

Prefix (felix/rules/nflogprefix.go): action A/D/P, owner P(olicy)/R(profile), direction I/E, rule index,
"|", then the policy's id: v3.32+ `PolicyID.ID()` (`np/ns/name`, `gnp/name`, `knp/ns/knp.default.name`),
v3.30/v3.31 the v1 policy name (`ns/tier.name`, `tier.name`, `ns/knp.default.name`); profiles by name.
End of tier: `DPI|tier` / `DPE|tier` (deny), `PPI|tier` / `PPE|tier` (pass). Log rules get id 0, and so
does the "no profile matched" rule (Felix never sets NoProfileMatchID).
"""

from __future__ import annotations

import base64
import hashlib

NFLOG_PREFIX_MAX_WO_TERM = 63
_ACTION = {"allow": "A", "deny": "D", "pass": "P", "next-tier": "P"}
_DIR = {"ingress": "I", "egress": "E"}


def fnv1a64(text: str) -> int:
    h = 0xcbf29ce484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


def maybe_hash(prefix: str) -> str:
    """63+ chars: first 10 + "_" + 41 chars of base64url(sha256(prefix)) + "_" + last 10 (63 chars)."""
    if len(prefix) < NFLOG_PREFIX_MAX_WO_TERM:
        return prefix
    digest = base64.urlsafe_b64encode(hashlib.sha256(prefix.encode()).digest()).decode().rstrip("=")
    return prefix[:10] + "_" + digest[:41] + "_" + prefix[-10:]


def rule_prefix(action: str, owner: str, direction: str, idx: int, name: str) -> str:
    return maybe_hash(f"{_ACTION[action]}{owner}{_DIR[direction]}{idx}|{name}")


def rule_match_id(action: str, owner: str, direction: str, idx: int, name: str) -> int:
    """owner "P" (policy) or "R" (profile); action allow/deny/pass/log (log -> 0)."""
    if action == "log":
        return 0
    return fnv1a64(rule_prefix(action, owner, direction, idx, name))


def end_of_tier_prefix(direction: str, tier: str, action: str) -> str:
    return maybe_hash(f"{'D' if action == 'deny' else 'P'}P{_DIR[direction]}|{tier}")


def end_of_tier_id(direction: str, tier: str, action: str) -> int:
    return fnv1a64(end_of_tier_prefix(direction, tier, action))
