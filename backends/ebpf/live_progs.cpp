#include "backends/ebpf/live_progs.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "backends/ebpf/bytes.h"

namespace dpi::ebpf {

Result<std::optional<uint32_t>> prog_array_lookup(const PinnedMap& map, uint32_t index) {
  if (map.info().type != BPF_MAP_TYPE_PROG_ARRAY)
    return make_error(ErrorCode::bad_input, fmt::format("{}: not a prog_array", map.path()));
  uint8_t key[4];
  put_le32(key, 0, index);
  auto v = map.lookup(key);
  if (!v) return v.error();
  if (!*v) return std::optional<uint32_t>{};
  return std::optional<uint32_t>{le32(**v, 0)};
}

Result<ProgInfo> prog_info_by_fd(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return sys_error(errno, "program info");
  ProgInfo p;
  p.id = info.id;
  p.type = info.type;
  p.name = info.name;
  std::memcpy(p.tag.data(), info.tag, p.tag.size());
  p.xlated_len = info.xlated_prog_len;
  // Second call for the map ids, with room for as many as the first reported.
  uint32_t nr = info.nr_map_ids;
  if (nr) {
    p.map_ids.resize(nr);
    bpf_prog_info again{};
    again.nr_map_ids = nr;
    again.map_ids = reinterpret_cast<uint64_t>(p.map_ids.data());
    len = sizeof(again);
    if (bpf_obj_get_info_by_fd(fd, &again, &len) != 0) return sys_error(errno, "program map ids");
    p.map_ids.resize(std::min(nr, again.nr_map_ids));
  }
  return p;
}

Result<ProgInfo> prog_info_by_id(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return sys_error(errno, fmt::format("program id {}", id));
  auto info = prog_info_by_fd(fd);
  ::close(fd);
  return info;
}

}  // namespace dpi::ebpf
