// The snapshot document (`dpinspect snapshot`, docs/snapshot.md): one section per dataplane,
// each written and read by its backend alone, under the backend's name:
//   {"schema": "dpinspect.snapshot/v2", "source": "live netns node1",
//    "nftables": {...}, "ebpf": {...}}
// Version 1 (before the sections) had the nftables backend's members at the top level and the
// eBPF section under "ebpf"; it still loads.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace dpi {

inline constexpr const char* kSnapshotSchema = "dpinspect.snapshot/v2";
inline constexpr const char* kSnapshotSchemaV1 = "dpinspect.snapshot/v1";
// The member holding `snapshot --k8s FILE`'s document as kubectl printed it (core/k8s_names.h).
inline constexpr const char* kSnapshotK8sMember = "k8s";

// A new document with schema and source, for the sections to be added to.
nlohmann::json new_snapshot(const std::string& source);

// Whether doc claims to be a snapshot (an object with a "schema" of dpinspect.snapshot/*, or, as
// version 1 writers also left it, "schema" and "ruleset").
bool is_snapshot(const nlohmann::json& doc);

// Where a backend's section was in a version 1 document.
enum class V1Section {
  member,     // under the backend's name, as in version 2 (eBPF)
  top_level,  // the document's own members (nftables)
};

// The section of dataplane `name` in doc (a snapshot, is_snapshot()). Errors: bad_input for a
// schema this dpinspect does not read or a section that is not an object; not_found when the
// snapshot has no such section (this dataplane was not on the node), so that --dataplane auto
// keeps to the others. origin names the file in messages.
// Moves the kSnapshotK8sMember out of doc (a snapshot) for LoadedDataplane::set_snapshot_k8s;
// nullopt when it has none. Pointers into doc's other members stay valid.
std::optional<nlohmann::json> take_snapshot_k8s(nlohmann::json& doc);

Result<const nlohmann::json*> snapshot_section(const nlohmann::json& doc, std::string_view name,
                                               V1Section v1, const std::string& origin);

}  // namespace dpi
