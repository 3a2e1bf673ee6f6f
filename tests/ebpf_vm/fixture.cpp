#include "tests/ebpf_vm/fixture.h"

#include <cstring>
#include <stdexcept>

#include "backends/ebpf/vm/assembler.h"

namespace dpi::bpfvm::test {

std::array<uint8_t, kIpSetKeySize> ipset_key(uint32_t prefixlen, uint64_t set_id,
                                             std::array<uint8_t, 4> addr, uint16_t port,
                                             uint8_t proto) {
  std::array<uint8_t, kIpSetKeySize> k{};
  for (int i = 0; i < 4; ++i) k[i] = static_cast<uint8_t>(prefixlen >> (8 * i));
  for (int i = 0; i < 8; ++i) k[4 + i] = static_cast<uint8_t>(set_id >> (56 - 8 * i));
  std::memcpy(&k[12], addr.data(), 4);
  k[16] = static_cast<uint8_t>(port);
  k[17] = static_cast<uint8_t>(port >> 8);
  k[18] = proto;
  return k;
}

std::vector<std::array<uint8_t, kIpSetKeySize>> fixture_members() {
  return {ipset_key(64 + 8, kSetId, {10, 0, 0, 0}, 0, 0),
          ipset_key(64 + 32 + 16 + 8, kSetId, {192, 168, 1, 1}, 80, 6)};
}

namespace {

LpmMap make_ipsets() {
  auto m = LpmMap::create(kIpSetKeySize, 4);
  if (!m) throw std::runtime_error(m.error().message);
  const uint8_t one[4] = {1, 0, 0, 0};
  for (const auto& k : fixture_members()) {
    if (auto s = m->insert(k, one); !s) throw std::runtime_error(s.error().message);
  }
  return std::move(*m);
}

std::unique_ptr<Program> stub(int32_t value) {
  const RawInsn code[] = {as::mov64_imm(0, value), as::exit()};
  auto p = Program::load(code, {}, "stub");
  if (!p) throw std::runtime_error(p.error().message);
  return std::make_unique<Program>(std::move(*p));
}

}  // namespace

Fixture::Fixture() : ipsets(make_ipsets()), allow_stub(stub(123)), deny_stub(stub(124)) {
  progs.set(kAllowIndex, allow_stub.get());
  progs.set(kDenyIndex, deny_stub.get());
  maps = {{kStateFd, &state}, {kIpSetsFd, &ipsets}, {kProgsFd, &progs}};
  ctx[48] = kAllowIndex;
  ctx[52] = kDenyIndex;
}

}  // namespace dpi::bpfvm::test
