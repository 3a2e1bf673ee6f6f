#include "core/snapshot.h"

#include <fmt/format.h>

namespace dpi {

using nlohmann::json;

namespace {

constexpr std::string_view kSchemaPrefix = "dpinspect.snapshot/";

}  // namespace

json new_snapshot(const std::string& source) {
  return {{"schema", kSnapshotSchema}, {"source", source}};
}

bool is_snapshot(const json& doc) {
  if (!doc.is_object()) return false;
  auto schema = doc.find("schema");
  if (schema == doc.end()) return false;
  if (schema->is_string() && schema->get_ref<const std::string&>().rfind(kSchemaPrefix, 0) == 0)
    return true;
  return doc.contains("ruleset");
}

std::optional<json> take_snapshot_k8s(json& doc) {
  if (!doc.is_object()) return std::nullopt;
  auto it = doc.find(kSnapshotK8sMember);
  if (it == doc.end()) return std::nullopt;
  std::optional<json> out(std::move(*it));
  doc.erase(it);  // a std::map: the other members do not move
  return out;
}

Result<const json*> snapshot_section(const json& doc, std::string_view name, V1Section v1,
                                     const std::string& origin) {
  const json schema = doc.is_object() ? doc.value("schema", json()) : json();
  const bool is_v1 = schema == kSnapshotSchemaV1;
  if (!is_v1 && schema != kSnapshotSchema)
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: schema: expected \"{}\" (or \"{}\"), found {}", origin,
                                  kSnapshotSchema, kSnapshotSchemaV1, schema.dump()));
  if (is_v1 && v1 == V1Section::top_level) return &doc;
  auto it = doc.find(std::string(name));
  if (it == doc.end())
    return make_error(ErrorCode::not_found,
                      fmt::format("{}: the snapshot has no {} section", origin, name));
  if (!it->is_object())
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: {}: expected an object (the {} section), found {}", origin,
                                  name, name, it->type_name()));
  return &*it;
}

}  // namespace dpi
