#include "backends/ebpf/live_maps.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <optional>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

namespace dpi::ebpf {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Error sys_error(int err, const std::string& what) {
  ErrorCode code = ErrorCode::system;
  if (err == EPERM || err == EACCES) code = ErrorCode::permission;
  if (err == ENOENT) code = ErrorCode::not_found;
  return make_error(code, fmt::format("{}: {}", what, std::strerror(err)));
}

namespace {

// bpffs also holds programs and links; only maps are read here.
bool fd_is_map(int fd) {
  char link[64];
  std::string path = fmt::format("/proc/self/fd/{}", fd);
  ssize_t n = ::readlink(path.c_str(), link, sizeof(link) - 1);
  if (n < 0) return false;
  link[n] = 0;
  return std::strcmp(link, "anon_inode:bpf-map") == 0;
}

Result<Fd> open_pin(const std::string& path) {
  LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
  int fd = bpf_obj_get_opts(path.c_str(), &opts);
  if (fd < 0) return sys_error(errno, path);
  return Fd(fd);
}

Result<MapInfo> map_info(int fd, const std::string& what) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return sys_error(errno, what);
  MapInfo m;
  m.id = info.id;
  m.type = info.type;
  m.key_size = info.key_size;
  m.value_size = info.value_size;
  m.max_entries = info.max_entries;
  m.flags = info.map_flags;
  m.name = info.name;
  return m;
}

}  // namespace

bool is_percpu(uint32_t map_type) {
  return map_type == BPF_MAP_TYPE_PERCPU_HASH || map_type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         map_type == BPF_MAP_TYPE_LRU_PERCPU_HASH || map_type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

Result<uint32_t> possible_cpus() {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) return sys_error(-n, "possible CPUs");
  return static_cast<uint32_t>(n);
}

Result<PinnedMap> PinnedMap::open(const std::string& dir, std::string_view pin_name) {
  PinnedMap m;
  m.path_ = dir + "/" + std::string(pin_name);
  auto fd = open_pin(m.path_);
  if (!fd) return fd.error();
  if (!fd_is_map(fd->get()))
    return make_error(ErrorCode::bad_input, fmt::format("{}: not a BPF map", m.path_));
  auto info = map_info(fd->get(), m.path_);
  if (!info) return info.error();
  m.fd_ = std::move(*fd);
  m.info_ = *info;
  m.value_buf_ = m.info_.value_size;
  if (is_percpu(m.info_.type)) {
    auto cpus = possible_cpus();
    if (!cpus) return cpus.error();
    m.cpus_ = *cpus;
    m.value_buf_ = (std::size_t{m.info_.value_size} + 7) / 8 * 8 * m.cpus_;
  }
  return m;
}

Result<uint32_t> pinned_map_id(const std::string& path) {
  auto fd = open_pin(path);
  if (!fd) return fd.error();
  if (!fd_is_map(fd->get()))
    return make_error(ErrorCode::bad_input, fmt::format("{}: not a BPF map", path));
  auto info = map_info(fd->get(), path);
  if (!info) return info.error();
  return info->id;
}

Result<std::optional<std::vector<uint8_t>>> PinnedMap::lookup(std::span<const uint8_t> key) const {
  if (key.size() != info_.key_size)
    return make_error(ErrorCode::bad_input, fmt::format("{}: lookup with a {}-byte key (map: {})",
                                                        path_, key.size(), info_.key_size));
  std::vector<uint8_t> value(value_buf_);
  if (bpf_map_lookup_elem(fd_.get(), key.data(), value.data()) != 0) {
    if (errno == ENOENT) return std::optional<std::vector<uint8_t>>{};
    return sys_error(errno, path_ + ": lookup");
  }
  return std::optional<std::vector<uint8_t>>{std::move(value)};
}

Result<std::vector<std::vector<uint8_t>>> PinnedMap::keys(std::size_t limit) const {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> cur(info_.key_size), next(info_.key_size);
  const void* prev = nullptr;  // NULL asks for the first key
  while (out.size() < limit) {
    if (bpf_map_get_next_key(fd_.get(), prev, next.data()) != 0) {
      if (errno == ENOENT) break;
      return sys_error(errno, path_ + ": next key");
    }
    out.push_back(next);
    cur = next;
    prev = cur.data();
  }
  return out;
}

Status PinnedMap::for_each(
    std::size_t limit,
    const std::function<void(std::span<const uint8_t>, std::span<const uint8_t>)>& fn) const {
  auto ks = keys(limit);
  if (!ks) return ks.error();
  for (const auto& k : *ks) {
    auto v = lookup(k);
    if (!v) return v.error();
    if (*v) fn(k, **v);
  }
  return Ok{};
}

Result<std::vector<PinnedMapInfo>> list_pinned_maps(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return sys_error(errno, dir);
  std::vector<PinnedMapInfo> out;
  // Calico's pins that the caller may not open (no CAP_BPF): with none opened, that is the
  // answer, not "no Calico maps".
  std::optional<Error> denied;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || e->d_type == DT_DIR) continue;
    std::string path = dir;
    path += '/';
    path += name;
    auto fd = open_pin(path);
    if (!fd && fd.error().code == ErrorCode::permission && !denied &&
        (name.rfind("cali_", 0) == 0 || name.rfind("xdp_cali_", 0) == 0))
      denied = fd.error();
    if (!fd || !fd_is_map(fd->get())) continue;
    auto info = map_info(fd->get(), path);
    if (!info) {
      ::closedir(d);
      return info.error();
    }
    out.push_back({name, info->type, info->key_size, info->value_size, info->max_entries});
  }
  ::closedir(d);
  if (out.empty() && denied) return *denied;
  std::sort(out.begin(), out.end(),
            [](const PinnedMapInfo& a, const PinnedMapInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace dpi::ebpf
