#include "tests/ebpf_agree/flows.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace dpi::ebpf::agree {

namespace {

[[noreturn]] void bad(const std::string& what) {
  fmt::print(stderr, "ebpf_agree: {}\n", what);
  std::exit(3);
}

bool parse_cidr(const std::string& text, uint32_t& addr, int& prefix) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  int p = 0;
  if (std::sscanf(text.c_str(), "%u.%u.%u.%u/%d", &a, &b, &c, &d, &p) != 5 || p < 0 || p > 32)
    return false;
  addr = a << 24 | b << 16 | c << 8 | d;
  prefix = p;
  return true;
}

IpAddr v4(uint32_t host_order) {
  IpAddr a;
  a.family = 2;
  a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[3] = static_cast<uint8_t>(host_order);
  return a;
}

uint32_t host_bits(int prefix) {
  return prefix >= 32 ? 0 : (0xffffffffu >> prefix);
}

// Calico's IP-set key: prefixlen (LE u32, 64 bits of set id + the matched key bits), set id (BE),
// address (BE), port (LE), protocol, pad.
std::vector<uint8_t> ipset_key(uint64_t set_id, const Member& m) {
  std::vector<uint8_t> k(20, 0);
  const uint32_t prefixlen = 64 + (m.proto ? 32 + 16 + 8 : m.prefix);
  for (int i = 0; i < 4; ++i) k[i] = static_cast<uint8_t>(prefixlen >> (8 * i));
  for (int i = 0; i < 8; ++i) k[4 + i] = static_cast<uint8_t>(set_id >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) k[12 + i] = static_cast<uint8_t>(m.addr >> (24 - 8 * i));
  k[16] = static_cast<uint8_t>(m.port);
  k[17] = static_cast<uint8_t>(m.port >> 8);
  k[18] = m.proto;
  return k;
}

}  // namespace

Universe read_universe(const std::string& dir) {
  Universe u;
  {
    std::ifstream in(dir + "/ipsets.txt");
    if (!in) bad("cannot read " + dir + "/ipsets.txt");
    std::string id, cidr;
    unsigned proto = 0, port = 0;
    while (in >> id >> cidr >> proto >> port) {
      Member m;
      if (!parse_cidr(cidr, m.addr, m.prefix) || proto > 255 || port > 65535)
        bad("ipsets.txt: bad member " + cidr);
      m.proto = static_cast<uint8_t>(proto);
      m.port = static_cast<uint16_t>(port);
      u.entries.emplace_back(ipset_key(std::stoull(id, nullptr, 16), m),
                             std::vector<uint8_t>{1, 0, 0, 0});
      u.members.push_back(m);
    }
  }
  std::ifstream in(dir + "/pools.txt");
  if (!in) bad("cannot read " + dir + "/pools.txt");
  for (std::string kind, value; in >> kind >> value;) {
    if (kind == "cidr") {
      Cidr c;
      if (!parse_cidr(value, c.addr, c.prefix)) bad("pools.txt: bad CIDR " + value);
      u.cidrs.push_back(c);
    } else if (kind == "port") {
      u.ports.push_back(static_cast<uint16_t>(std::stoul(value)));
    }
  }
  if (u.members.empty() || u.cidrs.empty() || u.ports.empty()) bad(dir + ": empty universe");
  return u;
}

uint32_t FlowGen::address(const Member** named) {
  const uint32_t r = pick(100);
  if (r < 45) {
    const Member& m = u_.members[pick(static_cast<uint32_t>(u_.members.size()))];
    if (m.proto && named) *named = &m;
    return (m.addr & ~host_bits(m.prefix)) | (static_cast<uint32_t>(rnd_()) & host_bits(m.prefix));
  }
  if (r < 70) {
    const Cidr& c = u_.cidrs[pick(static_cast<uint32_t>(u_.cidrs.size()))];
    return (c.addr & ~host_bits(c.prefix)) | (static_cast<uint32_t>(rnd_()) & host_bits(c.prefix));
  }
  if (r < 85) return 0x0A000000u | (static_cast<uint32_t>(rnd_()) & 0xfffff);
  return static_cast<uint32_t>(rnd_());
}

uint16_t FlowGen::port() {
  if (chance(55)) {
    const uint16_t p = u_.ports[pick(static_cast<uint32_t>(u_.ports.size()))];
    return chance(80) ? p : static_cast<uint16_t>(p + pick(3));  // edges of ranges
  }
  return static_cast<uint16_t>(pick(65536));
}

PolicyState FlowGen::next() {
  static constexpr uint8_t kProtos[] = {6, 6, 6, 17, 17, 17, 1, 1, 132, 47, 50, 0};
  PolicyState s;
  s.ip_proto = kProtos[pick(sizeof kProtos)];
  if (s.ip_proto == 0) s.ip_proto = static_cast<uint8_t>(pick(256));
  const Member* named = nullptr;
  const uint32_t src = address(nullptr);
  const uint32_t dst = address(&named);
  s.ip_src = v4(src);
  s.ip_dst = s.pre_nat_ip_dst = s.post_nat_ip_dst = v4(dst);
  if (chance(10)) s.post_nat_ip_dst = v4(address(nullptr));  // DNAT'ed to elsewhere
  if (s.ip_proto == 1) {
    static constexpr uint8_t kTypes[] = {0, 3, 8, 11};
    static constexpr uint8_t kCodes[] = {0, 0, 1, 4};
    const auto type = chance(85) ? kTypes[pick(4)] : static_cast<uint8_t>(pick(256));
    const auto code = chance(85) ? kCodes[pick(4)] : static_cast<uint8_t>(pick(256));
    s.set_icmp(type, code);
    s.post_nat_dport = s.dport;
  } else if (s.ip_proto == 6 || s.ip_proto == 17 || s.ip_proto == 132) {
    s.sport = port();
    s.dport = s.pre_nat_dport = s.post_nat_dport = port();
    if (named && chance(70)) {  // a named-port member's own protocol and port
      s.ip_proto = named->proto;
      s.dport = s.pre_nat_dport = s.post_nat_dport = named->port;
    }
    if (chance(10)) s.post_nat_dport = port();
  }
  if (chance(5)) s.flags |= state_flag::dest_is_host;
  if (chance(5)) s.flags |= state_flag::src_is_host;
  if (chance(5)) s.flags |= state_flag::nat_outgoing;
  return s;
}

std::string describe(const PolicyState& s) {
  return fmt::format("proto {} {}:{} -> {}:{} (pre-NAT {}:{}, post-NAT {}:{}) flags {:#x}",
                     s.ip_proto, s.ip_src.str(), s.sport, s.ip_dst.str(), s.dport,
                     s.pre_nat_ip_dst.str(), s.pre_nat_dport, s.post_nat_ip_dst.str(),
                     s.post_nat_dport, s.flags);
}

}  // namespace dpi::ebpf::agree
