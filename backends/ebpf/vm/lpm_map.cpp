#include "backends/ebpf/vm/lpm_map.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace dpi::bpfvm {

namespace {

static_assert(LpmMap::kMaxDataBytes == 32, "find_slot compares four words");

// Entries at least this long are grouped by their first data word (lpm_map.h).
constexpr uint32_t kGroupBits = 64;

uint32_t read_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

Result<LpmMap> LpmMap::create(uint32_t key_size, uint32_t value_size) {
  if (key_size <= 4 || key_size - 4 > kMaxDataBytes) {
    return make_error(
        ErrorCode::bad_input,
        fmt::format("LPM map key size {} unsupported (5..{} bytes)", key_size, kMaxDataBytes + 4));
  }
  if (value_size == 0) return make_error(ErrorCode::bad_input, "LPM map value size 0");
  LpmMap m(key_size - 4, value_size);
  m.slots_.resize(16);
  m.masks_.reserve(kMaxDataBytes * 8 + 1);
  for (uint32_t len = 0; len <= kMaxDataBytes * 8; ++len) m.masks_.push_back(mask_for(len));
  return m;
}

// Bits are numbered from the most significant bit of data[0], as the kernel's trie does.
LpmMap::Words LpmMap::mask_for(uint32_t prefixlen) {
  uint8_t bytes[kMaxDataBytes] = {};
  for (uint32_t i = 0; i < kMaxDataBytes; ++i) {
    if (prefixlen >= (i + 1) * 8) {
      bytes[i] = 0xff;
    } else if (prefixlen > i * 8) {
      bytes[i] = static_cast<uint8_t>(0xff << (8 - (prefixlen - i * 8)));
    }
  }
  Words w;
  std::memcpy(w.data(), bytes, sizeof bytes);
  return w;
}

uint64_t LpmMap::hash(const Words& w, uint32_t prefixlen) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ prefixlen;
  for (uint64_t x : w) {
    h ^= x;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return h;
}

size_t LpmMap::find_slot(const Words& w, uint32_t prefixlen) const {
  size_t mask = slots_.size() - 1;
  size_t i = hash(w, prefixlen) & mask;
  for (;;) {
    const Slot& s = slots_[i];
    if (s.value_index == UINT32_MAX) return i;
    if (s.prefixlen == prefixlen &&
        ((s.data[0] ^ w[0]) | (s.data[1] ^ w[1]) | (s.data[2] ^ w[2]) | (s.data[3] ^ w[3])) == 0) {
      return i;
    }
    i = (i + 1) & mask;
  }
}

void LpmMap::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{});
  for (const Slot& s : old) {
    if (s.value_index != UINT32_MAX) slots_[find_slot(s.data, s.prefixlen)] = s;
  }
}

Status LpmMap::insert(std::span<const uint8_t> key, std::span<const uint8_t> value) {
  if (key.size() != key_size() || value.size() != value_size_) {
    return make_error(ErrorCode::bad_input,
                      fmt::format("LPM insert: key {} / value {} bytes, map has {} / {}",
                                  key.size(), value.size(), key_size(), value_size_));
  }
  uint32_t prefixlen = read_le32(key.data());
  if (prefixlen > data_bytes_ * 8) {
    return make_error(ErrorCode::bad_input, fmt::format("LPM insert: prefixlen {} > {} data bits",
                                                        prefixlen, data_bytes_ * 8));
  }
  Words w{};
  std::memcpy(w.data(), key.data() + 4, data_bytes_);
  Words m = mask_for(prefixlen);
  for (size_t i = 0; i < w.size(); ++i) w[i] &= m[i];

  if ((count_ + 1) * 2 > slots_.size()) grow();
  Slot& s = slots_[find_slot(w, prefixlen)];
  if (s.value_index == UINT32_MAX) {
    s.data = w;
    s.prefixlen = prefixlen;
    s.value_index = static_cast<uint32_t>(values_.size() / value_size_);
    values_.resize(values_.size() + value_size_);
    ++count_;
    if (prefixlen >= kGroupBits && use_runs()) {
      std::vector<Run>& runs = runs_[w[0]];
      auto it = std::find_if(runs.begin(), runs.end(),
                             [&](const Run& r) { return r.prefixlen <= prefixlen; });
      if (it == runs.end() || it->prefixlen != prefixlen)
        it = runs.insert(it, Run{prefixlen, m[1], {}, {}});
      auto pos = std::lower_bound(it->words.begin(), it->words.end(), w[1]);
      const auto at = pos - it->words.begin();
      it->words.insert(pos, w[1]);
      it->value_index.insert(it->value_index.begin() + at, s.value_index);
    } else if (prefixlen >= kGroupBits) {
      std::vector<uint32_t>& lens = groups_[w[0]];
      auto it = std::find_if(lens.begin(), lens.end(), [&](uint32_t l) { return l <= prefixlen; });
      if (it == lens.end() || *it != prefixlen) lens.insert(it, prefixlen);
    } else {
      auto it = std::find_if(lengths_.begin(), lengths_.end(),
                             [&](const Length& l) { return l.prefixlen <= prefixlen; });
      if (it == lengths_.end() || it->prefixlen != prefixlen) lengths_.insert(it, {prefixlen, m});
    }
  }
  std::memcpy(values_.data() + static_cast<size_t>(s.value_index) * value_size_, value.data(),
              value_size_);
  return Ok{};
}

const uint8_t* LpmMap::lookup(const uint8_t* key) const {
  uint32_t prefixlen = read_le32(key);
  Words w{};
  std::memcpy(w.data(), key + 4, data_bytes_);
  if (prefixlen >= kGroupBits && use_runs()) {
    if (auto g = runs_.find(w[0]); g != runs_.end()) {
      for (const Run& r : g->second) {
        if (r.prefixlen > prefixlen) continue;
        const uint64_t want = w[1] & r.mask1;
        auto pos = std::lower_bound(r.words.begin(), r.words.end(), want);
        if (pos != r.words.end() && *pos == want) {
          const auto vi = r.value_index[static_cast<size_t>(pos - r.words.begin())];
          return values_.data() + static_cast<size_t>(vi) * value_size_;
        }
      }
    }
  } else if (prefixlen >= kGroupBits && !groups_.empty()) {
    if (auto g = groups_.find(w[0]); g != groups_.end()) {
      for (uint32_t len : g->second) {
        if (len > prefixlen) continue;
        const Words& mask = masks_[len];
        Words masked;
        for (size_t i = 0; i < w.size(); ++i) masked[i] = w[i] & mask[i];
        const Slot& s = slots_[find_slot(masked, len)];
        if (s.value_index != UINT32_MAX) {
          return values_.data() + static_cast<size_t>(s.value_index) * value_size_;
        }
      }
    }
  }
  for (const Length& l : lengths_) {
    if (l.prefixlen > prefixlen) continue;
    Words masked;
    for (size_t i = 0; i < w.size(); ++i) masked[i] = w[i] & l.mask[i];
    const Slot& s = slots_[find_slot(masked, l.prefixlen)];
    if (s.value_index != UINT32_MAX) {
      return values_.data() + static_cast<size_t>(s.value_index) * value_size_;
    }
  }
  return nullptr;
}

}  // namespace dpi::bpfvm
