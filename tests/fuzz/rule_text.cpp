// Fuzz target: the nft syntax renderer (rule_text, stmt_text, expr_text) over arbitrary JSON
// (seeds: the "expr" lists of real rules).
// Reports show every rule through it, and the loader renders statements it does not understand,
// so it must accept any JSON value: no crash, no sanitizer report and no exception.
#include "backends/nftables/rule_text.h"

#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz_target.h"

DPI_FUZZ_ONE_INPUT(rule_text) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  (void)dpi::nft::rule_text(j);
  (void)dpi::nft::stmt_text(j);
  (void)dpi::nft::expr_text(j);
  return 0;
}
