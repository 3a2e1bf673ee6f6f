// Command line of dpl-ebpf-attach and what each Calico version calls the maps the tc program uses.
#pragma once

#include <array>
#include <netinet/in.h>
#include <string>
#include <string_view>
#include <vector>

namespace dpl {

// Where a version keeps what the program uses (calico-ebpf.md §1, §6). v3.30 has one static
// programs map and one policy jump map for both hooks; both definitions then reuse the same map.
struct VersionMaps {
  std::string_view version;
  std::string_view state, ct, counters, progs_ing, progs_egr, jump_ing, jump_egr;
  std::string_view ct6;  // the IPv6 conntrack twin
  // Indices of allowed/drop per hook (tc ingress, tc egress): distinct when the map is shared.
  std::array<unsigned, 2> allowed, drop;
};

struct Options {
  std::string globals;  // <bpffs>/tc/globals
  const VersionMaps* maps = nullptr;
  std::vector<std::string> ifaces;
  std::vector<std::string> heps;  // host endpoints: calico_from_hep / calico_to_hep
  in_addr host_ip{};  // 0.0.0.0: no masquerade for a pod reaching itself through a service
};

// Throws AttachError on bad input.
Options parse_options(int argc, char** argv);

}  // namespace dpl
