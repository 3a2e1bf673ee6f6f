// What randpol.py wrote about the node (IP-set members, the CIDRs and ports rules use) and random
// flows biased towards it, so that rules match as well as miss.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backends/ebpf/node_state.h"
#include "backends/ebpf/state.h"

namespace dpi::ebpf::agree {

struct Member {
  uint32_t addr = 0;  // host order
  int prefix = 32;
  uint8_t proto = 0;  // named-port / IP-port members only
  uint16_t port = 0;
};

struct Cidr {
  uint32_t addr = 0;
  int prefix = 0;
};

struct Universe {
  std::vector<RawEntry> entries;  // cali_v4_ip_sets keys and values
  std::vector<Member> members;
  std::vector<Cidr> cidrs;
  std::vector<uint16_t> ports;
};

// Exits with a message when a file is missing or malformed (a test fixture, not user input).
Universe read_universe(const std::string& dir);

class FlowGen {
 public:
  FlowGen(const Universe& u, uint64_t seed) : u_(u), rnd_(seed) {}
  PolicyState next();

 private:
  uint32_t pick(uint32_t n) { return static_cast<uint32_t>(rnd_() % n); }
  bool chance(int percent) { return pick(100) < static_cast<uint32_t>(percent); }
  uint32_t address(const Member** named);
  uint16_t port();

  const Universe& u_;
  std::mt19937_64 rnd_;
};

std::string describe(const PolicyState& s);

}  // namespace dpi::ebpf::agree
