"""The bpf(2) system call through ctypes: just what the lab's eBPF node needs (x86_64, little-endian).

Every call takes and returns plain Python values; file descriptors come back wrapped in `Fd`, which
closes itself (use `with`). Errors raise `BpfError` carrying errno, the command and, for program loads,
the verifier log.
"""

from __future__ import annotations

import ctypes
import os
import struct

NR_BPF = 321  # x86_64

# Commands (include/uapi/linux/bpf.h, enum bpf_cmd).
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY, PROG_LOAD, OBJ_PIN, \
    OBJ_GET = range(8)
PROG_TEST_RUN = 10
PROG_GET_FD_BY_ID = 13
MAP_GET_FD_BY_ID = 14
OBJ_GET_INFO_BY_FD = 15

# Map types used by Calico.
MAP_TYPES = {
    "hash": 1, "array": 2, "prog_array": 3, "perf_event_array": 4, "percpu_hash": 5, "percpu_array": 6,
    "lpm_trie": 11, "lru_hash": 9, "lru_percpu_hash": 10, "ringbuf": 27,
}
MAP_TYPE_NAMES = {v: k for k, v in MAP_TYPES.items()}
PERCPU_TYPES = {"percpu_hash", "percpu_array", "lru_percpu_hash"}
F_NO_PREALLOC = 1

PROG_TYPE_SCHED_CLS = 3

ANY, NOEXIST, EXIST = 0, 1, 2  # update flags

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(OSError):
    def __init__(self, err: int, what: str, log: str = ""):
        super().__init__(err, f"{what}: {os.strerror(err)}" + (f"\n{log}" if log else ""))
        self.log = log


class Fd:
    """An owned file descriptor; closed by close() or at the end of a with block."""

    def __init__(self, fd: int):
        self.fd = fd

    def __int__(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass


def _sys(cmd: int, attr: bytearray, what: str, log_buf=None) -> int:
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret = _libc.syscall(NR_BPF, ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        log = log_buf.value.decode(errors="replace") if log_buf is not None else ""
        raise BpfError(err, what, log)
    return ret


def _addr(b) -> int:
    return ctypes.addressof(b)


def possible_cpus() -> int:
    """Number of possible CPUs (what per-CPU map values are sized by), from /sys."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n = max(n, int(hi or lo) + 1)
    return n


# --------------------------------------------------------------------------------------------
# Maps


def map_create(map_type: str, key_size: int, value_size: int, max_entries: int, flags: int = 0,
               name: str = "") -> Fd:
    attr = bytearray(128)
    struct.pack_into("<7I", attr, 0, MAP_TYPES[map_type], key_size, value_size, max_entries, flags, 0, 0)
    attr[28:28 + 15] = name.encode()[:15].ljust(15, b"\0")
    return Fd(_sys(MAP_CREATE, attr, f"map create {name or map_type}"))


def obj_pin(fd, path: str) -> None:
    p = ctypes.create_string_buffer(path.encode())
    attr = bytearray(128)
    struct.pack_into("<QII", attr, 0, _addr(p), int(fd), 0)
    _sys(OBJ_PIN, attr, f"pin {path}")


def obj_get(path: str) -> Fd:
    p = ctypes.create_string_buffer(path.encode())
    attr = bytearray(128)
    struct.pack_into("<QII", attr, 0, _addr(p), 0, 0)
    return Fd(_sys(OBJ_GET, attr, f"open pinned {path}"))


def _elem(cmd, fd, key: bytes, value_buf, flags: int, what: str) -> int:
    k = ctypes.create_string_buffer(bytes(key), len(key) or 1)
    attr = bytearray(128)
    struct.pack_into("<IIQQQ", attr, 0, int(fd), 0, _addr(k), _addr(value_buf) if value_buf is not None else 0,
                     flags)
    return _sys(cmd, attr, what)


def value_buffer_size(info: "MapInfo") -> int:
    """Bytes userspace exchanges for one value: per-CPU maps hold round_up(value, 8) per possible CPU."""
    if info.type_name in PERCPU_TYPES:
        return ((info.value_size + 7) // 8 * 8) * possible_cpus()
    return info.value_size


def map_update(fd, key: bytes, value: bytes, flags: int = ANY) -> None:
    v = ctypes.create_string_buffer(bytes(value), len(value) or 1)
    _elem(MAP_UPDATE_ELEM, fd, key, v, flags, "map update")


def map_lookup(fd, key: bytes, value_size: int) -> bytes | None:
    """Value bytes (value_size = value_buffer_size() for per-CPU maps), or None when absent."""
    v = ctypes.create_string_buffer(value_size)
    try:
        _elem(MAP_LOOKUP_ELEM, fd, key, v, 0, "map lookup")
    except BpfError as e:
        if e.errno == 2:
            return None
        raise
    return v.raw


def map_delete(fd, key: bytes) -> bool:
    try:
        _elem(MAP_DELETE_ELEM, fd, key, None, 0, "map delete")
    except BpfError as e:
        if e.errno == 2:
            return False
        raise
    return True


def map_next_key(fd, key: bytes | None, key_size: int) -> bytes | None:
    nk = ctypes.create_string_buffer(key_size)
    k = ctypes.create_string_buffer(bytes(key), key_size) if key is not None else None
    attr = bytearray(128)
    struct.pack_into("<IIQQ", attr, 0, int(fd), 0, _addr(k) if k is not None else 0, _addr(nk))
    try:
        _sys(MAP_GET_NEXT_KEY, attr, "map get next key")
    except BpfError as e:
        if e.errno == 2:
            return None
        raise
    return nk.raw


def map_keys(fd, key_size: int) -> list[bytes]:
    out, key = [], None
    while True:
        key = map_next_key(fd, key, key_size)
        if key is None:
            return out
        out.append(key)


def percpu_split(raw: bytes, value_size: int) -> list[bytes]:
    """Split a per-CPU lookup result into one value per CPU."""
    stride = (value_size + 7) // 8 * 8
    return [raw[i:i + value_size] for i in range(0, len(raw), stride)]


# --------------------------------------------------------------------------------------------
# Programs


def prog_load(insns: bytes, name: str = "", license: str = "Apache-2.0", prog_type: int = PROG_TYPE_SCHED_CLS,
              expected_attach_type: int = 0, log_size: int = 1 << 20) -> Fd:
    """Load a program; on failure the BpfError carries the verifier log (retried with log level 1)."""
    lic = ctypes.create_string_buffer(license.encode())
    code = ctypes.create_string_buffer(bytes(insns), len(insns))

    def attempt(log_level: int, log_buf):
        attr = bytearray(128)
        struct.pack_into("<IIQQIIQII", attr, 0, prog_type, len(insns) // 8, _addr(code), _addr(lic),
                         log_level, log_size if log_buf is not None else 0,
                         _addr(log_buf) if log_buf is not None else 0, 0, 0)
        attr[48:48 + 15] = name.encode()[:15].ljust(15, b"\0")
        struct.pack_into("<II", attr, 64, 0, expected_attach_type)
        return Fd(_sys(PROG_LOAD, attr, f"load program {name}", log_buf))

    try:
        return attempt(0, None)
    except BpfError:
        log_buf = ctypes.create_string_buffer(log_size)
        return attempt(1, log_buf)  # raises again, now with the log


def prog_test_run(fd, data: bytes, ctx: bytes | None = None, repeat: int = 1) -> int:
    """Run a program once on `data` (and `ctx`, a struct __sk_buff prefix); returns its return value."""
    d = ctypes.create_string_buffer(bytes(data), len(data))
    c = ctypes.create_string_buffer(bytes(ctx), len(ctx)) if ctx else None
    attr = bytearray(128)
    struct.pack_into("<IIIIQQII", attr, 0, int(fd), 0, len(data), 0, _addr(d), 0, repeat, 0)
    if c is not None:
        struct.pack_into("<IIQQ", attr, 40, len(ctx), 0, _addr(c), 0)
    _sys(PROG_TEST_RUN, attr, "prog test run")
    return struct.unpack_from("<I", attr, 4)[0]


def skb_ctx(cb: list[int] | tuple = (), mark: int = 0) -> bytes:
    """A struct __sk_buff prefix (72 bytes, up to `hash`, as Calico's tests pass): mark @8, cb[0..4] @48..67."""
    ctx = bytearray(72)
    struct.pack_into("<I", ctx, 8, mark)
    for i, v in enumerate(cb):
        struct.pack_into("<I", ctx, 48 + 4 * i, v & 0xffffffff)
    return bytes(ctx)


def prog_get_fd_by_id(prog_id: int) -> Fd:
    attr = bytearray(128)
    struct.pack_into("<III", attr, 0, prog_id, 0, 0)
    return Fd(_sys(PROG_GET_FD_BY_ID, attr, f"prog fd by id {prog_id}"))


def map_get_fd_by_id(map_id: int) -> Fd:
    attr = bytearray(128)
    struct.pack_into("<III", attr, 0, map_id, 0, 0)
    return Fd(_sys(MAP_GET_FD_BY_ID, attr, f"map fd by id {map_id}"))


# --------------------------------------------------------------------------------------------
# Object info


class MapInfo:
    def __init__(self, raw: bytes):
        (self.type, self.id, self.key_size, self.value_size, self.max_entries,
         self.flags) = struct.unpack_from("<6I", raw, 0)
        self.name = raw[24:40].split(b"\0")[0].decode()
        self.type_name = MAP_TYPE_NAMES.get(self.type, str(self.type))

    def __repr__(self):
        return (f"MapInfo({self.name} id={self.id} {self.type_name} {self.key_size}/{self.value_size} "
                f"max={self.max_entries} flags={self.flags:#x})")


class ProgInfo:
    def __init__(self, raw: bytes, map_ids: list[int]):
        self.type, self.id = struct.unpack_from("<II", raw, 0)
        self.tag = raw[8:16].hex()
        self.xlated_prog_len = struct.unpack_from("<I", raw, 20)[0]
        self.name = raw[64:80].split(b"\0")[0].decode()
        self.map_ids = map_ids

    def __repr__(self):
        return f"ProgInfo({self.name} id={self.id} tag={self.tag} maps={self.map_ids})"


def _info(fd, size: int, prefill: bytes = b"") -> bytearray:
    buf = ctypes.create_string_buffer(bytes(prefill).ljust(size, b"\0"), size)
    attr = bytearray(128)
    struct.pack_into("<IIQ", attr, 0, int(fd), size, _addr(buf))
    _sys(OBJ_GET_INFO_BY_FD, attr, "get info by fd")
    return bytearray(buf.raw)


def map_info(fd) -> MapInfo:
    return MapInfo(bytes(_info(fd, 96)))


def prog_info(fd) -> ProgInfo:
    first = _info(fd, 232)
    nr_maps = struct.unpack_from("<I", first, 52)[0]
    ids = (ctypes.c_uint32 * max(nr_maps, 1))()
    pre = bytearray(232)
    struct.pack_into("<IQ", pre, 52, nr_maps, ctypes.addressof(ids))
    raw = _info(fd, 232, pre)
    return ProgInfo(bytes(raw), list(ids)[:nr_maps])
