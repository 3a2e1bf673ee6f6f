// Fuzz target: the nft JSON loader (load_ruleset_json), then what the CLI does with a ruleset it
// accepted (pipeline.h). Invariants: no crash, no sanitizer report, no exception escapes, and a
// refused input gets an error that starts with the input's name.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/nftables/json_loader.h"
#include "fuzz_check.h"
#include "fuzz_target.h"
#include "pipeline.h"

DPI_FUZZ_INIT(load_ruleset_json) {
  dpi::fuzz::pipeline();
}

DPI_FUZZ_ONE_INPUT(load_ruleset_json) {
  constexpr const char* kOrigin = "fuzz.json";
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rs = dpi::nft::load_ruleset_json(text, kOrigin);
  if (!rs) {
    // Names from the input are quoted raw, so an error is one line only for real nft output
    // (nft's identifiers hold no newline); it must still start with the input's name.
    FUZZ_CHECK(rs.error().message.rfind(kOrigin, 0) == 0,
               "load error does not name the input: " + rs.error().message);
    return 0;
  }
  dpi::nft::Loaded src;
  src.ruleset = std::move(*rs);
  dpi::fuzz::exercise(src);
  return 0;
}
