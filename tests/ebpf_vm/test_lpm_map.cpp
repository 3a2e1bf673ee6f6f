// The LPM map against a brute-force longest-prefix match on random prefixes.
#include <cstring>
#include <random>

#include <catch2/catch.hpp>

#include "backends/ebpf/vm/lpm_map.h"
#include "tests/ebpf_vm/fixture.h"

namespace dpi::bpfvm::test {

namespace {

bool prefix_matches(const uint8_t* a, const uint8_t* b, uint32_t bits) {
  for (uint32_t i = 0; i < bits; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((a[byte] >> bit) & 1) != ((b[byte] >> bit) & 1)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("LPM map equals a brute-force longest-prefix match", "[unit][ebpf_vm]") {
  constexpr uint32_t kKey = 12;  // prefixlen + 8 data bytes
  auto m = LpmMap::create(kKey, 4);
  REQUIRE(m.ok());
  std::mt19937_64 rng(20261205);
  struct Entry {
    std::array<uint8_t, kKey> key;
    uint32_t value;
  };
  std::vector<Entry> entries;
  // Few distinct lengths and shared prefixes, like IP sets: data = 4 "set" bytes + 4 "addr" bytes.
  const uint32_t lengths[] = {0, 8, 33, 40, 48, 56, 63, 64};
  for (uint32_t i = 0; i < 2000; ++i) {
    Entry e{};
    uint32_t plen = lengths[rng() % 8];
    std::memcpy(&e.key[0], &plen, 4);
    uint64_t data = (rng() % 4) | (static_cast<uint64_t>(rng()) << 32);
    std::memcpy(&e.key[4], &data, 8);
    e.value = i + 1;
    REQUIRE(
        m->insert(e.key, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&e.value), 4)).ok());
    entries.push_back(e);
  }
  for (int q = 0; q < 20000; ++q) {
    std::array<uint8_t, kKey> key{};
    uint32_t plen = q % 7 == 0 ? static_cast<uint32_t>(rng() % 65) : 64;
    std::memcpy(&key[0], &plen, 4);
    const Entry& near = entries[rng() % entries.size()];
    std::memcpy(&key[4], &near.key[4], 8);
    key[4 + rng() % 8] ^= static_cast<uint8_t>(1u << (rng() % 8));  // perturb one bit
    // Brute force: the longest matching prefix <= plen; the latest insert wins among equal ones.
    int64_t best_len = -1;
    uint32_t best = 0;
    for (const Entry& e : entries) {
      uint32_t elen;
      std::memcpy(&elen, &e.key[0], 4);
      if (elen > plen || !prefix_matches(&e.key[4], &key[4], elen)) continue;
      if (static_cast<int64_t>(elen) >= best_len) {
        best_len = elen;
        best = e.value;
      }
    }
    const uint8_t* v = m->lookup(key.data());
    uint32_t got = 0;
    if (v) std::memcpy(&got, v, 4);
    INFO("query " << q << " plen " << plen);
    REQUIRE(got == best);
  }
}

TEST_CASE("LPM map refuses bad keys", "[unit][ebpf_vm]") {
  CHECK_FALSE(LpmMap::create(4, 4).ok());
  CHECK_FALSE(LpmMap::create(4 + 33, 4).ok());
  auto m = LpmMap::create(kIpSetKeySize, 4);
  REQUIRE(m.ok());
  const uint8_t one[4] = {1, 0, 0, 0};
  auto too_long = ipset_key(129, kSetId, {1, 2, 3, 4}, 0, 0);
  CHECK_FALSE(m->insert(too_long, one).ok());
  CHECK_FALSE(m->insert(std::span(too_long).first(10), one).ok());
}

}  // namespace dpi::bpfvm::test

namespace dpi::bpfvm::test {

namespace {

// Calico-shaped keys: 8 bytes of set id (few distinct), then address bits; lengths below 64 (not
// grouped by set id), at 64 and above (grouped), re-inserts that replace a value. Returns the
// number of queries that found something (so the caller can check both outcomes occurred).
template <uint32_t kKey>
int check_against_brute_force(uint64_t seed) {
  auto m = LpmMap::create(kKey, 4);
  REQUIRE(m.ok());
  std::mt19937_64 rng(seed);
  struct Entry {
    std::array<uint8_t, kKey> key;
    uint32_t value;
  };
  std::vector<Entry> entries;
  constexpr uint32_t kBits = (kKey - 4) * 8;
  const uint32_t lengths[] = {20, 63, 64, 80, 96, 96, 96, 120, kBits - 8, kBits};
  for (uint32_t i = 0; i < 3000; ++i) {
    Entry e{};
    if (i % 10 == 9) {
      e = entries[rng() % entries.size()];  // the same key again: the value is replaced
    } else {
      const uint32_t plen = lengths[rng() % std::size(lengths)];
      std::memcpy(&e.key[0], &plen, 4);
      const uint64_t set = rng() % 6;
      std::memcpy(&e.key[4], &set, 8);
      for (uint32_t b = 12; b < kKey; ++b) e.key[b] = static_cast<uint8_t>(rng() % 4);
    }
    e.value = i + 1;
    REQUIRE(
        m->insert(e.key, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&e.value), 4)).ok());
    entries.push_back(e);
  }
  int found = 0;
  for (int q = 0; q < 5000; ++q) {
    std::array<uint8_t, kKey> key{};
    const uint32_t plen = q % 5 == 0 ? static_cast<uint32_t>(rng() % (kBits + 1)) : kBits;
    std::memcpy(&key[0], &plen, 4);
    const Entry& near = entries[rng() % entries.size()];
    std::memcpy(&key[4], &near.key[4], kKey - 4);
    if (q % 2) key[4 + rng() % (kKey - 4)] ^= static_cast<uint8_t>(1u << (rng() % 8));
    int64_t best_len = -1;
    uint32_t best = 0;
    for (const Entry& e : entries) {
      uint32_t elen;
      std::memcpy(&elen, &e.key[0], 4);
      if (elen > plen || !prefix_matches(&e.key[4], &key[4], elen)) continue;
      if (static_cast<int64_t>(elen) >= best_len) {
        best_len = elen;
        best = e.value;
      }
    }
    const uint8_t* v = m->lookup(key.data());
    uint32_t got = 0;
    if (v) std::memcpy(&got, v, 4);
    INFO("key size " << kKey << ", query " << q << ", plen " << plen);
    REQUIRE(got == best);
    found += got != 0;
  }
  return found;
}

}  // namespace

TEST_CASE("LPM map: Calico-shaped keys, grouped by set id, equal brute force", "[unit][ebpf_vm]") {
  // 20: Calico's v4 IP-set key (sorted arrays per set); 36: 32 data bytes (hashed per set).
  for (const int found : {check_against_brute_force<20>(14), check_against_brute_force<36>(41)}) {
    CHECK(found > 500);
    CHECK(found < 5000);  // and some missed
  }
}

}  // namespace dpi::bpfvm::test
