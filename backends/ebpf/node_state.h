// Everything the eBPF backend reads from a node, as raw map bytes plus program info: the one form
// that both a live read and a snapshot's `ebpf` section produce, so that inspect is the same code
// online and offline.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/ebpf/detect_release.h"
#include "backends/ebpf/live_progs.h"
#include "backends/ebpf/map_table.h"
#include "core/result.h"

namespace dpi::ebpf {

using RawEntry = std::pair<std::vector<uint8_t>, std::vector<uint8_t>>;

// A policy jump-map slot: which map (by pin name), the index, and the program in it.
struct JumpSlot {
  std::string map;  // pin name: cali_jump3, cali_jump_ing2, ...
  uint32_t index = 0;
  std::optional<ProgInfo> prog;  // nullopt: empty slot
};

struct NodeState {
  std::string source;  // "live /sys/fs/bpf/tc/globals", "snapshot F"
  std::string bpffs;
  std::string policy_debug_dir;
  std::vector<PinnedMapInfo> maps;
  // The release detection; an error when the layout is unknown (named), which makes every
  // answer indeterminate.
  std::optional<Detection> release;
  std::string layout_error;
  // Raw entries by role name ("ifstate", "routes4", "ip_sets4", "conntrack4", "nat_fe4",
  // "nat_be").
  std::map<std::string, std::vector<RawEntry>> entries;
  std::vector<JumpSlot> jump_slots;
  // Debug JSON texts by file name; a file that could not be read has its error instead.
  std::map<std::string, std::string> debug_json;
  std::map<std::string, std::string> debug_json_errors;
  std::vector<std::string> warnings;  // read problems (a missing map, ...)

  const JumpSlot* slot(const std::string& map, uint32_t index) const;
  const PinnedMapInfo* map_info(std::string_view pin) const;
  const MapSpec* spec(MapRole role, int family = 0) const;
};

// Reads the pinned maps in bpffs and the debug JSON in policy_debug_dir. Read-only.
Result<NodeState> read_live_node(const std::string& bpffs, const std::string& policy_debug_dir);

// The snapshot's `ebpf` section.
nlohmann::json node_state_to_json(const NodeState& n);
Result<NodeState> node_state_from_json(const nlohmann::json& j, const std::string& source);

// Fills release / layout_error from maps.
void detect_layout(NodeState& n);

}  // namespace dpi::ebpf
