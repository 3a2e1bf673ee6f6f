// Fuzz target: the policy-debug JSON parser and the rule index built from it, and the tag of
// every sub-program. Whatever the bytes, a Result comes back; a parsed program is consistent.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/prog_tag.h"
#include "backends/ebpf/rule_index.h"
#include "fuzz_check.h"
#include "fuzz_target.h"

DPI_FUZZ_ONE_INPUT(ebpf_debug_json) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto prog = dpi::ebpf::parse_debug_json(text, "fuzz.json");
  if (!prog) {
    FUZZ_CHECK(prog.error().message.find('\n') == std::string::npos, "one-line error");
    return 0;
  }
  std::size_t next = 0;
  for (std::size_t k = 0; k < prog->subprograms.size(); ++k) {
    const auto& s = prog->subprograms[k];
    FUZZ_CHECK(s.k == k && s.first == next, "sub-programs contiguous and numbered");
    next = s.first + s.count;
    auto insns = prog->program(k);
    FUZZ_CHECK(insns.size() == s.count, "sub-program size");
    (void)dpi::ebpf::prog_tag(insns, dpi::ebpf::TagHash::sha256);
    (void)dpi::ebpf::prog_tag(insns, dpi::ebpf::TagHash::sha1);
  }
  FUZZ_CHECK(next == prog->insns.size(), "sub-programs cover the program");
  auto idx = dpi::ebpf::build_rule_index(*prog);
  if (!idx) {
    FUZZ_CHECK(idx.error().message.find('\n') == std::string::npos, "one-line error");
    return 0;
  }
  for (const auto& site : idx->sites) {
    FUZZ_CHECK(site.first <= site.end && site.end <= prog->insns.size() + 4, "site range");
    if (site.record) FUZZ_CHECK(*site.record < prog->insns.size(), "record inside program");
    (void)idx->find_id(site.match_id.value_or(0));
  }
  for (const auto& m : idx->maps) FUZZ_CHECK(m.first_use < prog->insns.size(), "map use");
  return 0;
}
