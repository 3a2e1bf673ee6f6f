// `dpinspect trace` on nf_tables: an owner-flagged table that marks the flow's packets with
// nftrace, and the trace events (NFNLGRP_NFTRACE) of the first one.
#pragma once

#include "core/result.h"
#include "core/trace.h"

namespace dpi::nft {

// The nft text of the temporary table (exposed for tests): earliest-priority prerouting and
// output chains setting `meta nftrace set 1` on the flow's tuple only.
std::string trace_table_text(const std::string& name, const TraceRequest& t);

// The kernel's verdict from a packet's events (exposed for tests): a drop decides; a verdict that
// hands the packet elsewhere (queue, stolen, repeat, unknown) or lost events leave it
// indeterminate with a note; otherwise the packet passed every chain it met, and the last accept
// is named.
void conclude_path(KernelPath& k, bool events_lost);

// Runs one trace in the calling thread's namespace: subscribes to trace events, adds the table
// (flags owner: the kernel deletes it when this process's netlink socket closes, even on
// SIGKILL), calls t.on_ready, and collects the first traced packet's events until it is dropped
// or goes quiet, or t.timeout passes. Needs CAP_NET_ADMIN: ErrorCode::permission otherwise.
Result<KernelPath> trace_here(const TraceRequest& t);

}  // namespace dpi::nft
