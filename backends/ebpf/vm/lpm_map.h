// BPF_MAP_TYPE_LPM_TRIE semantics (Calico's IP sets and routes) without the kernel's trie.
//
// A key is {u32 prefixlen (LE), data[]}; a lookup finds the entry with the longest prefixlen <=
// the key's prefixlen whose first prefixlen data bits equal the key's. Calico's members have few
// distinct prefix lengths (64+32 for a /32 member, 120 for a named port, a handful of CIDR widths),
// so the map keeps one open-addressing hash table of (prefixlen, masked data) and a lookup probes
// once per distinct length, longest first, stopping at the first hit: a few cache misses at any
// member count, where a bit trie walks ~log2(members) dependent nodes.
//
// Entries of 64 bits or more are also grouped by their first 8 data bytes (Calico's set id): a
// lookup probes only the lengths its own set uses (usually one, /32 members), then the lengths
// under 64 bits. Across 3,700 sets every length occurs somewhere, and each probe of a 256k-member
// table is a cache miss: the grouping is what keeps a miss to one or two probes. For keys of at
// most 16 data bytes (Calico's v4 IP sets) a group keeps, per length, its entries' masked second
// words in a sorted array: a lookup is a binary search in its own set's few cache lines, not a
// probe of the whole table (at 256k members the table is tens of megabytes: every probe would miss
// the caches).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace dpi::bpfvm {

class LpmMap {
 public:
  static constexpr uint32_t kMaxDataBytes = 32;

  // key_size includes the 4-byte prefixlen; data of at most kMaxDataBytes.
  static Result<LpmMap> create(uint32_t key_size, uint32_t value_size);

  uint32_t key_size() const { return data_bytes_ + 4; }
  uint32_t value_size() const { return value_size_; }
  size_t size() const { return count_; }

  // key: key_size bytes; a prefixlen beyond the data is an error, as in the kernel. Data bits
  // after the prefix are ignored (the kernel treats such keys as the same entry). Replaces.
  Status insert(std::span<const uint8_t> key, std::span<const uint8_t> value);
  // key: key_size bytes. nullptr when nothing matches.
  const uint8_t* lookup(const uint8_t* key) const;

 private:
  using Words = std::array<uint64_t, kMaxDataBytes / 8>;
  struct Slot {
    Words data{};
    uint32_t prefixlen = 0;
    uint32_t value_index = UINT32_MAX;  // UINT32_MAX: empty
  };
  struct Length {
    uint32_t prefixlen;
    Words mask;
  };

  LpmMap(uint32_t data_bytes, uint32_t value_size)
      : data_bytes_(data_bytes), value_size_(value_size) {}
  static uint64_t hash(const Words& w, uint32_t prefixlen);
  static Words mask_for(uint32_t prefixlen);
  size_t find_slot(const Words& w, uint32_t prefixlen) const;
  void grow();

  uint32_t data_bytes_;
  uint32_t value_size_;
  size_t count_ = 0;
  std::vector<Slot> slots_;      // power-of-two size, load <= 1/2
  std::vector<Length> lengths_;  // distinct prefix lengths under 64 present, longest first
  // First 8 data bytes -> the distinct prefix lengths (>= 64) of its entries, longest first.
  std::unordered_map<uint64_t, std::vector<uint32_t>> groups_;
  // Keys of at most 16 data bytes: first 8 data bytes -> per length (longest first) the masked
  // second words, sorted, and the value index of each.
  struct Run {
    uint32_t prefixlen;
    uint64_t mask1;
    std::vector<uint64_t> words;
    std::vector<uint32_t> value_index;
  };
  std::unordered_map<uint64_t, std::vector<Run>> runs_;
  bool use_runs() const { return data_bytes_ <= 16; }
  std::vector<Words> masks_;  // by prefix length, 0..kMaxDataBytes*8
  std::vector<uint8_t> values_;
};

}  // namespace dpi::bpfvm
