"""Thread-safe fault injection and request recording for the MEXC simulator.

Fault spec syntax (CLI `--fault` and `POST /_sim/faults {"spec": ...}`):

    MODE[:key=value[,key=value...]]

MODE is one of the REST modes rate_limit, server_error, slow, timeout, malformed, forbidden,
stale or the WebSocket modes ws_drop, ws_stall, ws_malformed, ws_slow_consumer; keys are
count (positive int, apply to the next N matching requests; default: until cleared),
path (exact API path such as /api/v3/klines, or a prefix ending in "*"; default: every
/api/ path; WebSocket faults match the path "/ws"), retry_after (int seconds >= 0, default 1),
delay (float seconds >= 0) and status (int; server_error: 500-599, default 503).
Example: "rate_limit:count=3,retry_after=2,path=/api/v3/klines".

REST modes act on the requests they match. WebSocket modes (see ws_server.py):

    ws_drop           open connections are cut without a close frame; count: how many
    ws_stall          no data frames (control answers still flow) for `delay` seconds, or
                      until cleared
    ws_malformed      data frames replaced by bytes that are no PushDataV3ApiWrapper;
                      count: how many frames
    ws_slow_consumer  a connection is treated as not reading: its frames pile up in the
                      bounded send buffer until it overflows and the server closes it;
                      count: how many connections
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

REST_MODES = frozenset(
    {"rate_limit", "server_error", "slow", "timeout", "malformed", "forbidden", "stale"}
)
WS_MODES = frozenset({"ws_drop", "ws_stall", "ws_malformed", "ws_slow_consumer"})
FAULT_MODES = (
    "rate_limit",
    "server_error",
    "slow",
    "timeout",
    "malformed",
    "forbidden",
    "stale",
    "ws_drop",
    "ws_stall",
    "ws_malformed",
    "ws_slow_consumer",
)
DEFAULT_DELAYS = {"slow": 1.0, "timeout": 30.0}
DEFAULT_SERVER_ERROR_STATUS = 503
RECENT_REQUESTS = 500


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault. `count` None means until cleared."""

    mode: str
    count: int | None = None
    path: str | None = None
    retry_after: int = 1
    delay: float = 0.0
    status: int | None = None
    id: int = 0
    frozen_at_ms: int | None = None  # stale: the market time the answers are frozen at

    def __post_init__(self) -> None:
        _validate(self)

    def matches(self, path: str) -> bool:
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    @property
    def effective_status(self) -> int | None:
        if self.mode == "server_error":
            return self.status or DEFAULT_SERVER_ERROR_STATUS
        return self.status

    @property
    def effective_delay(self) -> float:
        return self.delay or DEFAULT_DELAYS.get(self.mode, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate(f: Fault) -> None:
    if f.mode not in FAULT_MODES:
        raise ValueError(
            f"unknown fault mode {f.mode!r} (expected one of {', '.join(FAULT_MODES)})"
        )
    if f.count is not None and (not isinstance(f.count, int) or f.count < 1):
        raise ValueError(f"bad fault option count={f.count!r}: must be a positive integer")
    if f.path is not None and (not isinstance(f.path, str) or not f.path.startswith("/")):
        raise ValueError(f"bad fault option path={f.path!r}: must start with '/'")
    if not isinstance(f.retry_after, int) or f.retry_after < 0:
        raise ValueError(f"bad fault option retry_after={f.retry_after!r}: must be an int >= 0")
    if not isinstance(f.delay, int | float) or f.delay < 0:
        raise ValueError(f"bad fault option delay={f.delay!r}: must be a number >= 0")
    if f.status is not None:
        if not isinstance(f.status, int) or not 100 <= f.status <= 599:
            raise ValueError(f"bad fault option status={f.status!r}: must be an HTTP status")
        if f.mode == "server_error" and not 500 <= f.status <= 599:
            raise ValueError(f"bad fault option status={f.status!r}: server_error needs 5xx")


_OPTION_TYPES: dict[str, type] = {
    "count": int,
    "path": str,
    "retry_after": int,
    "delay": float,
    "status": int,
}


def parse_fault_spec(spec: str) -> Fault:
    """Parse "MODE[:key=value,...]" into a Fault; ValueError names the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty fault spec")
    mode, _, rest = spec.strip().partition(":")
    mode = mode.strip()
    if mode not in FAULT_MODES:
        raise ValueError(f"unknown fault mode {mode!r} (expected one of {', '.join(FAULT_MODES)})")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"bad fault option {part!r}: expected key=value")
        if key not in _OPTION_TYPES:
            raise ValueError(
                f"unknown fault option {key!r} in {part!r} (expected one of "
                f"{', '.join(_OPTION_TYPES)})"
            )
        if key in options:
            raise ValueError(f"duplicate fault option {key!r}")
        try:
            options[key] = _OPTION_TYPES[key](value)
        except ValueError:
            kind = _OPTION_TYPES[key].__name__
            raise ValueError(f"bad fault option {part!r}: {key} must be {kind}") from None
    return Fault(mode=mode, **options)


def fault_from_dict(data: dict[str, Any]) -> Fault:
    """Build a Fault from a JSON object (admin API): {"spec": "..."} or the Fault fields."""
    if not isinstance(data, dict):
        raise ValueError("fault must be a JSON object")
    if "spec" in data:
        if len(data) != 1:
            raise ValueError("'spec' cannot be combined with other fault fields")
        return parse_fault_spec(data["spec"])
    allowed = set(_OPTION_TYPES) | {"mode"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    if "mode" not in data:
        raise ValueError("fault needs a 'mode'")
    fields = {k: v for k, v in data.items() if v is not None}
    if isinstance(fields.get("delay"), bool) or isinstance(fields.get("count"), bool):
        raise ValueError("count/delay must be numbers")
    return Fault(**fields)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time_ms: int
    method: str
    path: str
    query: str
    status: int
    fault: str | None
    weight: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Active faults (first match wins) plus a log of every API request."""

    def __init__(self, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._by_path: Counter[str] = Counter()
        self._by_path_status: Counter[tuple[str, int]] = Counter()
        self._recent: deque[RequestRecord] = deque(maxlen=RECENT_REQUESTS)
        self._total = 0

    # ---- faults ----------------------------------------------------------------------------

    def add(self, fault: Fault | str | dict[str, Any] | None = None, **fields: Any) -> Fault:
        """Activate a fault (a Fault, a spec string, a dict, or keyword fields)."""
        if fault is None:
            fault = fault_from_dict(fields)
        elif isinstance(fault, str):
            fault = parse_fault_spec(fault)
        elif isinstance(fault, dict):
            fault = fault_from_dict(fault)
        with self._lock:
            frozen = fault.frozen_at_ms
            if fault.mode == "stale" and frozen is None:
                frozen = self._clock()
            stored = replace(fault, id=self._next_id, frozen_at_ms=frozen)
            self._next_id += 1
            self._faults.append(stored)
        return stored

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def active(self, path: str, modes: frozenset[str]) -> Fault | None:
        """The first active fault of one of `modes` matching path, without consuming it."""
        with self._lock:
            return next((f for f in self._faults if f.mode in modes and f.matches(path)), None)

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> int:
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            return n

    def take(self, path: str, modes: frozenset[str] = REST_MODES) -> Fault | None:
        """The first active fault of one of `modes` matching path, consuming one of its
        `count`."""
        with self._lock:
            for i, f in enumerate(self._faults):
                if f.mode not in modes or not f.matches(path):
                    continue
                if f.count is not None:
                    if f.count <= 1:
                        del self._faults[i]
                    else:
                        self._faults[i] = replace(f, count=f.count - 1)
                return f
        return None

    # ---- request log -----------------------------------------------------------------------

    def record(
        self,
        method: str,
        path: str,
        query: str,
        status: int,
        fault: str | None = None,
        weight: int = 0,
    ) -> None:
        rec = RequestRecord(self._clock(), method, path, query, status, fault, weight)
        with self._lock:
            self._total += 1
            self._by_path[path] += 1
            self._by_path_status[(path, status)] += 1
            self._recent.append(rec)

    def count(self, path: str | None = None, status: int | None = None) -> int:
        """Requests recorded, optionally for one path and/or one status."""
        with self._lock:
            if path is None and status is None:
                return self._total
            if status is None:
                return self._by_path[path] if path is not None else 0
            if path is None:
                return sum(n for (_, s), n in self._by_path_status.items() if s == status)
            return self._by_path_status[(path, status)]

    def recent(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._recent)

    def requests_snapshot(self, recent_limit: int = 100) -> dict[str, Any]:
        with self._lock:
            by_status: dict[str, dict[str, int]] = {}
            for (path, status), n in sorted(self._by_path_status.items()):
                by_status.setdefault(path, {})[str(status)] = n
            recent = list(self._recent)[-recent_limit:] if recent_limit > 0 else []
            return {
                "total": self._total,
                "by_path": dict(sorted(self._by_path.items())),
                "by_path_status": by_status,
                "recent": [r.to_dict() for r in recent],
            }

    def reset_log(self) -> None:
        with self._lock:
            self._total = 0
            self._by_path.clear()
            self._by_path_status.clear()
            self._recent.clear()

    def reset(self) -> None:
        """Clear faults and the request log."""
        self.clear()
        self.reset_log()
