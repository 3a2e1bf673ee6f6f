// Reading Calico's pinned maps on a live node (libbpf). Read-only by construction: maps are
// opened with BPF_F_RDONLY, so the kernel refuses any write through these fds.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/ebpf/detect_release.h"
#include "core/result.h"

namespace dpi::ebpf {

inline constexpr const char* kDefaultBpffs = "/sys/fs/bpf/tc/globals";

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct MapInfo {
  uint32_t id = 0;
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  std::string name;  // the kernel's (15 chars at most), not the pin name
};

bool is_percpu(uint32_t map_type);
// Possible CPUs (per-CPU values have one slot per possible CPU).
// errno -> Error, with permission/not_found told apart (exit 4 vs 3 at the CLI).
Error sys_error(int err, const std::string& what);

Result<uint32_t> possible_cpus();

class PinnedMap {
 public:
  // dir/pin_name, opened read-only. not_found when no such pin.
  static Result<PinnedMap> open(const std::string& dir, std::string_view pin_name);

  const std::string& path() const { return path_; }
  const MapInfo& info() const { return info_; }
  int fd() const { return fd_.get(); }
  // Bytes a lookup returns: value_size, or for per-CPU maps value_size rounded up to 8 times the
  // possible CPUs.
  std::size_t value_buffer_size() const { return value_buf_; }
  uint32_t cpus() const { return cpus_; }

  // nullopt when the key is absent.
  Result<std::optional<std::vector<uint8_t>>> lookup(std::span<const uint8_t> key) const;
  // Every key, at most limit (a map changing under us can make the walk restart; the limit bounds
  // it).
  Result<std::vector<std::vector<uint8_t>>> keys(std::size_t limit) const;
  // Every entry; entries deleted during the walk are skipped.
  Status for_each(std::size_t limit,
                  const std::function<void(std::span<const uint8_t> key,
                                           std::span<const uint8_t> value)>& fn) const;

 private:
  PinnedMap() = default;
  std::string path_;
  Fd fd_;
  MapInfo info_;
  std::size_t value_buf_ = 0;
  uint32_t cpus_ = 1;
};

// The id of the map pinned at path now (the pin may name a newer map than an fd opened earlier:
// Felix re-creates maps); not_found when nothing is pinned there, bad_input when not a map.
Result<uint32_t> pinned_map_id(const std::string& path);

// The maps pinned in dir (objects that are not maps are skipped), for detect_release(). When
// none could be read because opening Calico's pins (cali_*) was refused (no CAP_BPF), that
// permission error.
Result<std::vector<PinnedMapInfo>> list_pinned_maps(const std::string& dir);

}  // namespace dpi::ebpf
