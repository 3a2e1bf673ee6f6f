#pragma once

#include <string>

namespace dpi::test {

inline std::string source_path(const std::string& rel) {
  return std::string(DPI_SOURCE_DIR) + "/" + rel;
}
inline std::string shared_path(const std::string& rel) {
  return std::string(DPI_SHARED_DIR) + "/" + rel;
}

}  // namespace dpi::test
