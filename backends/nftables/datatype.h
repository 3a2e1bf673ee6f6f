// nft datatypes: how a constant in the ruleset JSON becomes bytes for a given key.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "backends/nftables/value.h"

namespace dpi::nft {

enum class Type {
  integer,  // width from context
  ipv4,
  ipv6,
  inet_proto,
  inet_service,
  ifname,
  mark,
  nfproto,
  pkttype,
  ct_state,
  ct_status,
  ct_dir,
  icmp_type,
  icmpv6_type,
  icmp_code,
  fib_addrtype,
  tcp_flags,
  verdict,
  ether_addr,
  boolean,
};

std::size_t type_width(Type t);
std::optional<Type> type_from_name(std::string_view nft_type_name);
std::string_view type_name(Type t);
// Bitmask types accept "in" and flag lists.
bool is_flag_type(Type t);

// Parses one scalar constant (number or symbolic string) of type t. Returns nullopt with a
// message in *why when the constant is not understood.
std::optional<Bytes> parse_constant(Type t, std::size_t width, const nlohmann::json& v,
                                    std::string* why);
// Parses a constant that may also be a prefix, a range or an ifname wildcard ("cali*").
std::optional<Range> parse_range(Type t, std::size_t width, const nlohmann::json& v,
                                 std::string* why);

}  // namespace dpi::nft
