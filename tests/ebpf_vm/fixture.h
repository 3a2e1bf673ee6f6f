// The maps, stub programs and context every conformance case and the agreement test run with, in
// the interpreter's model (and, in the privileged tests, mirrored in the kernel).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/ebpf/vm/maps.h"
#include "backends/ebpf/vm/program.h"

namespace dpi::bpfvm::test {

// The fds the test programs use in their ld_imm64 src=1 instructions.
inline constexpr int32_t kStateFd = 1;
inline constexpr int32_t kIpSetsFd = 2;
inline constexpr int32_t kProgsFd = 3;
// Where the stubs sit in the prog array and what the context's cb[0]/cb[1] say (as Calico's tests).
inline constexpr uint32_t kAllowIndex = 2;
inline constexpr uint32_t kDenyIndex = 4;
inline constexpr uint32_t kStateValueSize = 512;
inline constexpr uint32_t kIpSetKeySize = 20;  // v4: prefixlen, set id, addr, port, proto, pad
inline constexpr uint64_t kSetId = 0x1122334455667788ull;

// Calico's v4 IP-set key: {u32 prefixlen LE; u64 set_id BE; addr BE; u16 port LE; u8 proto; pad}.
std::array<uint8_t, kIpSetKeySize> ipset_key(uint32_t prefixlen, uint64_t set_id,
                                             std::array<uint8_t, 4> addr, uint16_t port,
                                             uint8_t proto);
// The members the fixture's IP-set map holds: 10.0.0.0/8 and 192.168.1.1 tcp:80 in kSetId.
std::vector<std::array<uint8_t, kIpSetKeySize>> fixture_members();

struct Fixture {
  Fixture();
  ArrayMap state{kStateValueSize, 2};
  LpmMap ipsets;
  ProgArray progs{8};
  std::unique_ptr<Program> allow_stub;  // r0 = 123
  std::unique_ptr<Program> deny_stub;   // r0 = 124
  MapTable maps;
  std::array<uint8_t, 192> ctx{};  // struct __sk_buff, cb[0] = kAllowIndex, cb[1] = kDenyIndex
};

}  // namespace dpi::bpfvm::test
