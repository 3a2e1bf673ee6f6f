// The kernel's ipsets (which iptables' "-m set" refers to by index): read over nfnetlink or
// parsed from `ipset save` output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/nftables/datatype.h"
#include "backends/nftables/value.h"
#include "core/result.h"

namespace dpi::nft {

// One element: one Range per key component (see Ipset::key_types), exact or a CIDR/range span.
struct IpsetMember {
  std::vector<Range> key;
  bool nomatch = false;
  bool operator==(const IpsetMember&) const = default;
};

struct Ipset {
  std::string name;
  std::string type;    // "hash:net", "hash:ip,port", "list:set", ...
  int family = 0;      // NFPROTO_IPV4 (2), NFPROTO_IPV6 (10); 0 for list:set and bitmap:port
  uint16_t index = 0;  // the kernel's ip_set_id_t, which xt_set stores
  // Key components in order. An ip/net dimension is one component (ipv4/ipv6); a port
  // dimension is two: inet_proto then inet_service; mark is mark; mac ether_addr; iface ifname.
  std::vector<Type> key_types;
  std::vector<IpsetMember> members;
  std::vector<std::string> list_members;  // list:set: member set names, in order
  uint8_t netmask = 0;  // hash:ip "netmask N": lookups compare the first N bits only (0 = none)
  bool operator==(const Ipset&) const = default;
};

struct IpsetCatalog {
  std::vector<Ipset> sets;
  const Ipset* by_index(uint16_t index) const;
  const Ipset* by_name(std::string_view name) const;
};

// Key components of an ipset type name for a family; empty for list:set; nullopt-like empty
// with *why set when the type is not known.
std::vector<Type> ipset_key_types(std::string_view type, int family, std::string* why);

// IPSET_CMD_LIST dump of the calling thread's network namespace.
// Errors: permission, system (also when the ip_set module is not loaded: no sets exist then,
// which is reported as an empty catalog rather than an error).
Result<IpsetCatalog> read_ipsets();

// The same from saved reply bytes of that dump (4-byte aligned; see xt::nl_parse).
Result<IpsetCatalog> ipsets_from_dump(const void* buf, std::size_t len);

// `ipset save` (or `ipset restore` input) text. Indexes follow the order of the create lines,
// which is the kernel's numbering (ip_set_id_t) only for restore input in creation order in a
// namespace that never destroyed a set. `ipset save` prints list:set sets after all others, so
// with a list:set created before other sets its numbering differs: prefer read_ipsets.
Result<IpsetCatalog> parse_ipset_save(std::string_view text, const std::string& origin);

}  // namespace dpi::nft
