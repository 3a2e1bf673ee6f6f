// Shared by the fuzz targets: an invariant that must hold for every input. A violation prints
// what broke and aborts, which libFuzzer reports as a crash with the input saved.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                               \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", std::string(what).c_str(), \
                   __FILE__, __LINE__);                                                      \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace dpi::fuzz {

// A file of the source tree, read once at start-up (seed data the targets need).
inline std::string source_file(const std::string& rel) {
  std::ifstream in(std::string(DPI_SOURCE_DIR) + "/" + rel, std::ios::binary);
  FUZZ_CHECK(in, "cannot read " + rel);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Error messages reach the terminal as one line that starts with the input's name.
inline bool one_line_naming(std::string_view message, std::string_view origin) {
  return message.substr(0, origin.size()) == origin && message.find('\n') == std::string_view::npos;
}

}  // namespace dpi::fuzz
