// The tuple of a packet the kernel handed over (an NFLOG payload, the start of a dropped skb):
// bytes from the IP header on, as the kernel copied them (snaplen 80 for Calico's log rules).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/flow.h"
#include "core/result.h"

namespace dpi {

// The flow of one IPv4 or IPv6 packet: addresses, protocol, ports (TCP, UDP, SCTP) or ICMP type
// and code. IPv6 extension headers (hop-by-hop, routing, destination options, fragment) are
// skipped. A packet cut before the fields the flow needs, a later fragment (no L4 header), or
// another IP version is bad_input with the reason. The flow is not normalized.
Result<Flow> decode_ip_packet(const uint8_t* data, std::size_t len);

}  // namespace dpi
