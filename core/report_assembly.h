// The parts of a report every backend assembles alike: the assumptions about the flow and the
// node's routing, and one report out of several possible outcomes (random choices in the ruleset,
// service backends), so that the backends state and merge them in the same words.
#pragma once

#include <string>
#include <vector>

#include "core/flow.h"
#include "core/node_info.h"
#include "core/report.h"

namespace dpi {

// Conntrack state and, when the user gave none, the source port. tcp_flags: the backend models
// the packet's TCP flags (SYN for a new connection, ACK otherwise), and says so for a TCP flow.
void add_flow_assumptions(Report& rep, const Flow& flow, bool tcp_flags);

// How the node's routing is modelled from its information (null: the input carries none).
void add_routing_assumptions(Report& rep, const NodeInfo* node);

// What the route lookup chose for the flow.
struct RouteChoice {
  std::string ip_rule;       // the ip rule that chose the route, when not a default one
  bool local = false;        // delivered to this node
  bool local_given = false;  // ... because the user said so
  std::string oif;           // the output interface found
  bool oif_given = false;    // the user named the output interface
  bool translated = false;   // the route is to the destination after NAT
};
void add_route_assumptions(Report& rep, const RouteChoice& route);

// One possible outcome of the flow and the report the backend made for it.
struct Alternative {
  std::string choice;  // e.g. "numgen random mod 2 = 1", "service backend 1 of 2: ..."
  Report report;
};

// Appends each alternative's outcome to rep.outcomes; true when they all share one verdict.
bool add_outcomes(Report& rep, const std::vector<Alternative>& alternatives);

// The verdict depends on which outcome the kernel picks: no single verdict or rule is the answer.
void depends_on_choice(Report& rep, std::string expression, std::string why, std::string summary);

}  // namespace dpi
