// The BPF programs attached to a node's workload interfaces, read live from a network namespace:
// tc clsact filters (rtnetlink filter dump) and TCX links (BPF_PROG_QUERY), with each program's
// name and tag. Read-only; for `detect --netns`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dataplane.h"
#include "core/result.h"

namespace dpi::ebpf {

struct AttachedProg {
  std::string iface;
  uint32_t ifindex = 0;
  std::string hook;  // "ingress" or "egress"
  std::string mode;  // "tc" (a clsact filter) or "tcx"
  uint32_t prog_id = 0;
  std::string name;   // the kernel's program name ("" when its info could not be read)
  std::string tag;    // hex, 16 digits
  uint32_t pref = 0;  // tc filter priority (0 for tcx)
};

struct Attachments {
  std::string netns;
  std::size_t interfaces = 0;  // interfaces whose name has the prefix
  std::vector<AttachedProg> progs;
  std::vector<std::string> notes;  // what could not be read (per interface or hook)
};

// Every program attached to the tc ingress/egress of the interfaces named `prefix`* in netns
// (a name under /run/netns or a path; "" = the current namespace).
Result<Attachments> read_attachments(const std::string& netns, const std::string& prefix = "cali");

nlohmann::json attachments_to_json(const Attachments& a);
// "cali0de30c97d63 ingress tc prog 42 calico_from_wep tag 1a2b..." per program.
std::vector<std::string> attachments_text(const Attachments& a);
// detect's part: JSON `ebpf.attached`, one text line per program, a clue with the count or the
// reason they could not be read.
void add_attachments(dpi::Detection& d, const Result<Attachments>& a);

}  // namespace dpi::ebpf
