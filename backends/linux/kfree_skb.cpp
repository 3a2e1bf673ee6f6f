#include "backends/linux/kfree_skb.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "core/packet.h"
#include "kfree_skb.skel.h"
#include "kfree_skb_event.h"

namespace dpi::os {

namespace {

struct SkelFree {
  void operator()(kfree_skb* s) const { kfree_skb__destroy(s); }
};
struct RingFree {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
struct BtfFree {
  void operator()(btf* b) const { btf__free(b); }
};

Error bpf_error(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == EPERM || err == EACCES)
    return make_error(ErrorCode::permission,
                      msg +
                          "; watching kernel drops loads a BPF program: run as root or with "
                          "CAP_BPF and CAP_PERFMON");
  return make_error(ErrorCode::system, msg);
}

// enum skb_drop_reason from the running kernel's BTF: its values change between releases.
std::map<uint32_t, std::string> drop_reason_names() {
  std::map<uint32_t, std::string> names;
  std::unique_ptr<btf, BtfFree> vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux) return names;
  const int id = btf__find_by_name_kind(vmlinux.get(), "skb_drop_reason", BTF_KIND_ENUM);
  if (id < 0) return names;
  const btf_type* t = btf__type_by_id(vmlinux.get(), static_cast<uint32_t>(id));
  const struct btf_enum* e = btf_enum(t);
  for (uint16_t i = 0; i < btf_vlen(t); ++i) {
    std::string n = btf__name_by_offset(vmlinux.get(), e[i].name_off);
    constexpr std::string_view kPrefix = "SKB_DROP_REASON_";
    if (n.rfind(kPrefix, 0) == 0) n.erase(0, kPrefix.size());
    names[static_cast<uint32_t>(e[i].val)] = n;
  }
  return names;
}

class KfreeSkbSource final : public WatchSource {
 public:
  std::string_view name() const override { return "kfree_skb"; }
  int fd() const override { return ring_buffer__epoll_fd(ring_.get()); }
  Status read(std::vector<WatchEvent>& out) override {
    out_ = &out;
    int n = ring_buffer__consume(ring_.get());
    out_ = nullptr;
    if (n < 0 && n != -EINTR) return bpf_error(-n, "reading the kfree_skb ring buffer");
    return Ok{};
  }
  uint64_t lost() const override { return skel_->bss->lost; }

  static int on_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<KfreeSkbSource*>(ctx);
    if (size < sizeof(dpi_drop_event) || !self->out_) return 0;
    dpi_drop_event ev{};
    std::memcpy(&ev, data, sizeof(ev));
    WatchEvent e;
    e.source = "kfree_skb";
    e.time = std::chrono::system_clock::now();
    e.in_ifindex = static_cast<int>(ev.ifindex);
    e.drop_reason_code = ev.reason;
    auto it = self->reasons_.find(ev.reason);
    e.drop_reason = it != self->reasons_.end() ? it->second : fmt::format("reason {}", ev.reason);
    auto flow = decode_ip_packet(ev.data, std::min<std::size_t>(ev.len, DPI_DROP_BYTES));
    if (flow)
      e.flow = std::move(*flow);
    else
      e.undecoded = flow.error().message;
    self->out_->push_back(std::move(e));
    return 0;
  }

  std::unique_ptr<kfree_skb, SkelFree> skel_;
  std::unique_ptr<ring_buffer, RingFree> ring_;
  std::map<uint32_t, std::string> reasons_;

 private:
  std::vector<WatchEvent>* out_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<WatchSource>> open_kfree_skb_source(const std::vector<int>& ifindexes) {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) != 0)
    return make_error(ErrorCode::system, fmt::format("reading this thread's network namespace: {}",
                                                     std::strerror(errno)));
  auto s = std::make_unique<KfreeSkbSource>();
  s->skel_.reset(kfree_skb__open());
  if (!s->skel_) return bpf_error(errno, "opening the kfree_skb BPF program");
  s->skel_->bss->target_netns = static_cast<uint32_t>(st.st_ino);
  if (int err = kfree_skb__load(s->skel_.get()))
    return bpf_error(-err, "loading the kfree_skb BPF program (tp_btf/kfree_skb)");
  const int map = bpf_map__fd(s->skel_->maps.watched_ifindex);
  for (int i : ifindexes) {
    const uint32_t key = static_cast<uint32_t>(i);
    const uint8_t one = 1;
    if (bpf_map_update_elem(map, &key, &one, BPF_ANY) != 0)
      return bpf_error(errno, "filling the kfree_skb interface filter");
  }
  s->ring_.reset(ring_buffer__new(bpf_map__fd(s->skel_->maps.events), KfreeSkbSource::on_sample,
                                  s.get(), nullptr));
  if (!s->ring_) return bpf_error(errno, "opening the kfree_skb ring buffer");
  s->reasons_ = drop_reason_names();
  if (int err = kfree_skb__attach(s->skel_.get()))
    return bpf_error(-err, "attaching to the skb:kfree_skb tracepoint");
  return std::unique_ptr<WatchSource>(std::move(s));
}

}  // namespace dpi::os
