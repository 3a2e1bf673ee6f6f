// Where the unit tests find their inputs, and the inputs several test files share.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "backends/nftables/xt/ipsets.h"

namespace dpi::test {

inline std::string source_path(const std::string& rel) {
  return std::string(DPI_SOURCE_DIR) + "/" + rel;
}
inline std::string shared_path(const std::string& rel) {
  return std::string(DPI_SHARED_DIR) + "/" + rel;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The ipsets the xt payload fixtures were captured with (tests/fixtures/xt/capture.ipsets).
inline const nft::IpsetCatalog& capture_ipsets() {
  static const nft::IpsetCatalog cat = [] {
    auto c = nft::parse_ipset_save(slurp(source_path("tests/fixtures/xt/capture.ipsets")),
                                   "capture.ipsets");
    REQUIRE(c.ok());
    return *c;
  }();
  return cat;
}

}  // namespace dpi::test
