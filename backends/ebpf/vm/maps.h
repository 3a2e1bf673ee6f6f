// The maps a policy program touches, modelled in userspace: the state array, Calico's IP-set LPM
// trie and the prog arrays that tail calls go through. The caller owns them; a Program refers to
// them by pointer, so they must outlive every Program loaded against them.
#pragma once

#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "backends/ebpf/vm/lpm_map.h"

namespace dpi::bpfvm {

class Program;

// BPF_MAP_TYPE_ARRAY: u32 key, fixed-size zero-initialised values.
class ArrayMap {
 public:
  ArrayMap(uint32_t value_size, uint32_t max_entries)
      : value_size_(value_size),
        max_entries_(max_entries),
        data_(static_cast<size_t>(value_size) * max_entries) {}
  uint32_t value_size() const { return value_size_; }
  uint32_t max_entries() const { return max_entries_; }
  // Empty when key >= max_entries.
  std::span<uint8_t> value(uint32_t key) {
    if (key >= max_entries_) return {};
    return {data_.data() + static_cast<size_t>(key) * value_size_, value_size_};
  }
  std::span<const uint8_t> value(uint32_t key) const {
    if (key >= max_entries_) return {};
    return {data_.data() + static_cast<size_t>(key) * value_size_, value_size_};
  }

 private:
  uint32_t value_size_;
  uint32_t max_entries_;
  std::vector<uint8_t> data_;
};

// BPF_MAP_TYPE_PROG_ARRAY: index -> program (nullptr = empty slot, the tail call falls through).
class ProgArray {
 public:
  explicit ProgArray(uint32_t max_entries) : slots_(max_entries, nullptr) {}
  uint32_t max_entries() const { return static_cast<uint32_t>(slots_.size()); }
  // Returns false when index is out of range.
  bool set(uint32_t index, const Program* prog) {
    if (index >= slots_.size()) return false;
    slots_[index] = prog;
    return true;
  }
  const Program* get(uint32_t index) const {
    return index < slots_.size() ? slots_[index] : nullptr;
  }

 private:
  std::vector<const Program*> slots_;
};

using MapRef = std::variant<ArrayMap*, LpmMap*, ProgArray*>;

// What an ld_imm64 src=1 (BPF_PSEUDO_MAP_FD) immediate stands for: the fd numbers as they appear
// in the instructions (the debug JSON's, or any the caller chose) -> the modelled map.
struct MapBinding {
  int32_t fd = 0;
  MapRef map;
};
using MapTable = std::vector<MapBinding>;

}  // namespace dpi::bpfvm
