// nft's JSON wraps every object as {"kind": {...}}; this names the one member without keeping a
// reference into a temporary iterator.
#pragma once

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace dpi::nft {

// Precondition: j is an object with at least one member.
inline std::pair<const std::string&, const nlohmann::json&> only_member(const nlohmann::json& j) {
  auto it = j.begin();
  return {it.key(), it.value()};
}

}  // namespace dpi::nft
