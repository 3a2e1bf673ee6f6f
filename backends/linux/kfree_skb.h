// `watch --source kfree_skb`: packets the kernel drops on chosen interfaces of the calling
// thread's network namespace, from the skb:kfree_skb tracepoint (bpf/kfree_skb.bpf.c).
#pragma once

#include <memory>
#include <vector>

#include "core/result.h"
#include "core/watch.h"

namespace dpi::os {

// Loads and attaches the program, filtered in the kernel to `ifindexes` of the calling thread's
// namespace (interface numbers repeat across namespaces, so the namespace is matched too).
// Detached and unloaded when the source is destroyed; nothing is pinned. Needs CAP_BPF and
// CAP_PERFMON, or root (ErrorCode::permission).
Result<std::unique_ptr<WatchSource>> open_kfree_skb_source(const std::vector<int>& ifindexes);

}  // namespace dpi::os
