"""A small BPF assembler with labels, shaped like the one Felix uses for its policy programs.

What matters for fidelity with Felix's debug JSON (felix/bpf/asm/asm.go, read for facts):
  * an instruction after an unconditional jump or exit is dropped unless a label at its position is the
    target of some jump (so an unreachable end-of-tier rule disappears and its comments land on the next
    emitted instruction);
  * labels and comments attach to the index of the next instruction; only in debug mode are they, and
    the annotations ("R1 = *(u8 *)(R9 + 104) /* state->ip_proto */", "goto deny", "call ..."), kept;
  * `inst` is 8 numbers: opcode, src<<4|dst, off LE16, imm LE32; ld_imm64 is two instructions; a map
    reference is ld_imm64 with src=1 and the map's fd in imm.
Felix's trampolines (a jump island every ~32k instructions) are not written: the lab's programs are far
smaller than that.
"""

from __future__ import annotations

import json
import struct

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
PSEUDO_MAP_FD = 1

# Opcodes (class | op | source / size | mode).
LD_IMM64, LD_IMM64_PT2 = 0x18, 0x00
MOV64, MOV64_IMM, MOV32_IMM = 0xbf, 0xb7, 0xb4
ADD64, ADD64_IMM, AND64_IMM, OR64_IMM, LSH64_IMM = 0x0f, 0x07, 0x57, 0x47, 0x67
AND32 = 0x5c
LDX8, LDX16, LDX32, LDX64 = 0x71, 0x69, 0x61, 0x79
STX8, STX16, STX32, STX64 = 0x73, 0x6b, 0x63, 0x7b
JA, CALL, EXIT = 0x05, 0x85, 0x95
JEQ_IMM, JNE_IMM, JGE_IMM, JLT_IMM, JLE_IMM = 0x15, 0x55, 0x35, 0xa5, 0xb5
JEQ32_IMM, JNE32_IMM = 0x16, 0x56

HELPER_MAP_LOOKUP_ELEM, HELPER_TAIL_CALL = 1, 12
_HELPER_NAMES = {1: "bpf_map_lookup_elem", 12: "bpf_tail_call"}
_CAST = {LDX8: "u8", LDX16: "u16", LDX32: "u32", LDX64: "u64", STX8: "u8", STX16: "u16", STX32: "u32",
         STX64: "u64"}


def encode(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> list[int]:
    return list(struct.pack("<BBhi", opcode, (src << 4) | dst, off, _s32(imm)))


def _s32(v: int) -> int:
    v &= 0xffffffff
    return v - (1 << 32) if v & 0x80000000 else v


def reg(r: int) -> str:
    return f"R{r}"


class AsmError(RuntimeError):
    pass


class Block:
    def __init__(self, debug: bool = True):
        self.debug = debug
        self.insns: list[dict] = []
        self.fixups: dict[str, list[int]] = {}
        self.label_idx: dict[str, int] = {}
        self.idx_labels: dict[int, list[str]] = {}
        self.idx_comments: dict[int, list[str]] = {}
        self.used_targets: set[str] = set()
        self.num_jumps = 0

    # ---- core --------------------------------------------------------------------------

    def _reachable(self) -> bool:
        if not self.insns:
            return True
        if self.insns[-1]["inst"][0] in (JA, EXIT):
            return any(l in self.used_targets for l in self.idx_labels.get(len(self.insns), []))
        return True

    def add(self, opcode, dst=0, src=0, off=0, imm=0, annotation="", target: str | None = None) -> None:
        if not self._reachable():
            for l in self.idx_labels.pop(len(self.insns), []):
                self.label_idx.pop(l, None)
            return
        insn = {"inst": encode(opcode, dst, src, off, imm)}
        if target is not None:
            if self.debug:
                annotation = f"goto {target}"
            self.used_targets.add(target)
            self.fixups.setdefault(target, []).append(len(self.insns))
        if annotation and self.debug:
            insn["annotation"] = annotation
        self.insns.append(insn)
        if opcode & 0x07 in (0x05, 0x06):
            self.num_jumps += 1

    def label(self, name: str) -> None:
        self.label_idx[name] = len(self.insns)
        self.idx_labels.setdefault(len(self.insns), []).append(name)
        self._fix(name)

    def comment(self, text: str) -> None:
        if self.debug:
            self.idx_comments.setdefault(len(self.insns), []).append(text)

    def target_used(self, name: str) -> bool:
        return name in self.used_targets

    def _fix(self, name: str) -> None:
        for at in self.fixups.pop(name, []):
            off = self.label_idx[name] - at - 1
            if off == -1 or not -32768 <= off <= 32767:
                raise AsmError(f"bad jump offset {off} to {name}")
            self.insns[at]["inst"][2:4] = list(struct.pack("<h", off))

    def assemble(self) -> list[dict]:
        for name in list(self.fixups):
            if name not in self.label_idx:
                raise AsmError(f"missing label {name}")
            self._fix(name)
        out = []
        for idx, insn in enumerate(self.insns):
            # Key order of Felix's asm.Insn JSON: inst, labels, comments, annotation.
            o = {"inst": insn["inst"]}
            if self.debug and idx in self.idx_labels:
                o["labels"] = list(self.idx_labels[idx])
            if self.debug and idx in self.idx_comments:
                o["comments"] = list(self.idx_comments[idx])
            if "annotation" in insn:
                o["annotation"] = insn["annotation"]
            out.append(o)
        return out

    # ---- instruction helpers (names follow what they emit) ------------------------------

    def mov64(self, dst, src):
        self.add(MOV64, dst, src)

    def mov64_imm(self, dst, imm):
        self.add(MOV64_IMM, dst, 0, 0, imm)

    def mov32_imm(self, dst, imm):
        self.add(MOV32_IMM, dst, 0, 0, imm)

    def add64(self, dst, src):
        self.add(ADD64, dst, src)

    def add64_imm(self, dst, imm):
        self.add(ADD64_IMM, dst, 0, 0, imm)

    def and64_imm(self, dst, imm):
        self.add(AND64_IMM, dst, 0, 0, imm)

    def or64_imm(self, dst, imm):
        self.add(OR64_IMM, dst, 0, 0, imm)

    def lsh64_imm(self, dst, imm):
        self.add(LSH64_IMM, dst, 0, 0, imm)

    def and32(self, dst, src):
        self.add(AND32, dst, src)

    def ld_imm64(self, dst, value: int):
        value &= (1 << 64) - 1
        self.add(LD_IMM64, dst, 0, 0, value & 0xffffffff)
        self.add(LD_IMM64_PT2, 0, 0, 0, value >> 32)

    def ld_map_fd(self, dst, fd: int):
        self.add(LD_IMM64, dst, PSEUDO_MAP_FD, 0, fd)
        self.add(LD_IMM64_PT2, 0, 0, 0, 0)

    def load(self, opcode, dst, ptr, off, field=""):
        self.add(opcode, dst, ptr, off, 0,
                 f"{reg(dst)} = *({_CAST[opcode]} *)({reg(ptr)} + {off}) /* {field} */")

    def store(self, opcode, ptr, src, off, field=""):
        self.add(opcode, ptr, src, off, 0,
                 f"*({_CAST[opcode]} *) ({reg(ptr)} + {off}) /* {field} */ = {reg(src)}")

    def store_stack(self, opcode, src, off):
        self.add(opcode, R10, src, off)

    def jump(self, target):
        self.add(JA, 0, 0, 0, 0, target=target)

    def jump_imm(self, opcode, dst, imm, target):
        self.add(opcode, dst, 0, 0, imm, target=target)

    def call(self, helper):
        self.add(CALL, 0, 0, 0, helper, f"call {_HELPER_NAMES[helper]}")

    def exit(self):
        self.add(EXIT)


def insns_bytes(insns: list[dict]) -> bytes:
    return b"".join(bytes(i["inst"]) for i in insns)


def relocate(insns: list[dict], fd_map: dict[int, int]) -> bytes:
    """Program bytes with every map-fd ld_imm64 placeholder replaced by the real fd (fd_map: placeholder -> fd)."""
    out = bytearray(insns_bytes(insns))
    for i in range(0, len(out), 8):
        if out[i] == LD_IMM64 and (out[i + 1] >> 4) == PSEUDO_MAP_FD:
            placeholder = struct.unpack_from("<i", out, i + 4)[0]
            if placeholder not in fd_map:
                raise AsmError(f"no map for fd placeholder {placeholder}")
            struct.pack_into("<i", out, i + 4, fd_map[placeholder])
    return bytes(out)


def go_json(obj) -> str:
    """JSON as Go's encoding/json Encoder writes it: compact, HTML characters escaped, newline-terminated."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text + "\n"
