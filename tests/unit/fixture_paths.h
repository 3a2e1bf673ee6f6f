// Where the unit tests find their inputs, and the inputs several test files share.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

// "0a0b..." -> bytes, as the xt fixtures record payloads.
inline std::vector<uint8_t> unhex(const std::string& h) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
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
