"""Run a function in a forked child that has its own mount namespace and a fresh bpffs (tests only).

The child unshares CLONE_NEWNS, makes every mount private (`mount --make-rprivate /`) and mounts bpf on a
temporary directory, so nothing it pins is visible in, or survives into, the host's /sys/fs/bpf.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile

CLONE_NEWNS = 0x00020000


def host_bpffs_listing() -> list[str]:
    out = []
    for root, dirs, files in os.walk("/sys/fs/bpf"):
        out += [os.path.join(root, n) for n in sorted(dirs + files)]
    return sorted(out)


def run(fn) -> tuple[int, int]:
    """fn(bpffs_dir) -> (passed, failed), run in the child; returns its counts ((0, 1) if it died)."""
    r, w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        result = [0, 1]
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            subprocess.run(["mount", "--make-rprivate", "/"], check=True)
            d = tempfile.mkdtemp(prefix="dpl-ebpf-test-")
            subprocess.run(["mount", "-t", "bpf", "bpf", d], check=True)
            try:
                result = list(fn(d))
            finally:
                subprocess.run(["umount", d], check=False)
                os.rmdir(d)
        except Exception as e:  # reported as one failure, not a traceback
            print(f"FAIL {type(e).__name__}: {e}")
        finally:
            sys.stdout.flush()
            os.write(w, json.dumps(result).encode())
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.waitpid(pid, 0)
    try:
        passed, failed = json.loads(data)
    except ValueError:
        passed, failed = 0, 1
    return passed, failed
