#include "backends/ebpf/live_rule_counters.h"

#include <fmt/format.h>

#include "backends/ebpf/counters.h"

namespace dpi::ebpf {

namespace {

// Felix's default is 10000 entries; a resized map is read up to this many.
constexpr std::size_t kMaxRuleCounters = 1'000'000;

}  // namespace

Result<LiveRuleCounters> LiveRuleCounters::open(const std::string& dir, const MapSpec& spec) {
  auto m = PinnedMap::open(dir, spec.pin_name);
  if (!m) return m.error();
  const MapInfo& i = m->info();
  if (i.type != static_cast<uint32_t>(spec.type) || i.key_size != spec.key_size ||
      i.value_size != spec.value_size)
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: type {} key/value {}/{} bytes, Calico's rule counters are "
                                  "{} {}/{}",
                                  m->path(), i.type, i.key_size, i.value_size,
                                  map_type_name(spec.type), spec.key_size, spec.value_size));
  return LiveRuleCounters(std::move(*m));
}

Result<uint64_t> LiveRuleCounters::read(uint64_t id) const {
  auto v = map_.lookup(encode_rule_counter_key(id));
  if (!v) return v.error();
  if (!*v) return uint64_t{0};
  auto n = decode_rule_counter_value(**v, map_.cpus());
  if (!n) return make_error(n.error().code, fmt::format("{}: {}", path(), n.error().message));
  return *n;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> LiveRuleCounters::read_all() const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::optional<Error> err;
  auto st =
      map_.for_each(kMaxRuleCounters, [&](std::span<const uint8_t> k, std::span<const uint8_t> v) {
        if (err) return;
        auto id = decode_rule_counter_key(k);
        auto n = decode_rule_counter_value(v, map_.cpus());
        if (!id) err = id.error();
        if (!n) err = n.error();
        if (id && n) out.emplace_back(*id, *n);
      });
  if (!st) return st.error();
  if (err) return make_error(err->code, fmt::format("{}: {}", path(), err->message));
  return out;
}

}  // namespace dpi::ebpf
