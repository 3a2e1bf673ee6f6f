// `dpinspect watch`: packets the kernel logged or dropped, as they happen, each explained by the
// static evaluator. Backends supply the event sources (WatchSource: NFLOG, kfree_skb, ...); core
// explains, rate-limits, renders and sums them up.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/calico/nflog_prefix.h"
#include "core/flow.h"
#include "core/node_info.h"
#include "core/report.h"
#include "core/result.h"

namespace dpi {

class LoadedDataplane;

inline constexpr const char* kWatchSchema = "dpinspect.watch/v1";

// What the user asked to watch, for the backend that opens the sources (in SourceRequest::netns).
struct WatchRequest {
  // NFLOG (nfnetlink_log) groups: Calico's log rules (flow logs) send to 1 and 2.
  bool nflog = false;
  std::vector<int> groups;
  // Packets the kernel drops (skb:kfree_skb) on these interfaces of the namespace only.
  bool kfree_skb = false;
  std::vector<int> ifindexes;
  // The dataplane's rule counters (Calico's eBPF cali_rule_ctrs2), polled every `interval`.
  bool counters = false;
  std::chrono::milliseconds interval{1000};
};

// One poll's reading of a rule counter, by rule id ("0x1573250364eb46b5").
struct CounterReading {
  std::string rule_id;
  uint64_t packets = 0;
  std::optional<uint64_t> bytes;  // nullopt where the dataplane counts packets only
};

// A rule counter that changed between two polls. A counter never goes down on its own: when it
// does (reset) or its entry is gone (vanished: the policy was reprogrammed or removed), that is
// said, never turned into a negative delta.
struct CounterChange {
  enum class Kind { moved, reset, vanished };
  Kind kind = Kind::moved;
  std::string rule_id;
  uint64_t before = 0, now = 0;  // packets; a rule id first seen after the baseline was 0 before
  std::optional<uint64_t> bytes_before, bytes_now;
  // moved: the packets (bytes) counted since the previous poll.
  uint64_t packets() const { return kind == Kind::moved ? now - before : 0; }
  std::optional<uint64_t> bytes() const;
};
std::string_view counter_change_name(CounterChange::Kind k);

// The changes between successive polls of every rule counter. The first poll is the baseline.
class CounterDeltas {
 public:
  // In rule id order; none on the first call.
  std::vector<CounterChange> update(const std::vector<CounterReading>& now);
  bool has_baseline() const { return last_.has_value(); }

 private:
  std::optional<std::map<std::string, CounterReading>> last_;
};

// One packet a source reported.
struct WatchEvent {
  std::string source;  // nflog, kfree_skb, counters
  std::chrono::system_clock::time_point time;
  std::optional<Flow> flow;  // decoded from the packet's bytes
  std::string undecoded;     // why flow is missing
  int in_ifindex = 0, out_ifindex = 0;
  // nflog
  std::optional<int> group;
  std::string prefix;
  // kfree_skb: the kernel's enum skb_drop_reason, named without SKB_DROP_REASON_
  std::optional<uint32_t> drop_reason_code;
  std::string drop_reason;
  // counters: the rule counter that changed, and what its rule is in Calico's terms (the backend
  // attributes the rule id: core/calico/attribution.h), nullopt when the id is in no live
  // policy program; hook: "tc ingress caliXXX" when one program records the id.
  std::optional<CounterChange> counter;
  std::optional<Decision> rule;
  std::string hook;
  // The same poll's deltas of that hook's Calico counters ("tc ingress cali1 DROPPED_BY_POLICY"):
  // unlike a rule id's, they count that endpoint only.
  std::vector<std::pair<std::string, uint64_t>> hook_counters;
  std::string unattributed;  // why rule is missing
};

// What a source says about itself rather than about a packet, once when it happens: a map it
// re-opened because Felix re-created it (the baseline taken again: counts between the
// re-creation and that read are not known), a read that failed and why. Shown as a line of its
// own and listed in the summary.
struct WatchNotice {
  std::string source;  // counters
  std::string kind;    // map_recreated, read_failed
  std::chrono::system_clock::time_point time;
  std::string map;                         // the pin's path
  std::optional<uint32_t> old_id, new_id;  // the kernel's map ids (map_recreated)
  std::string message;                     // the whole sentence
};
std::string watch_notice_text(const WatchNotice& n);
nlohmann::json watch_notice_json(const WatchNotice& n);

// A stream of events opened by a backend, read by the watch loop. Each source is a unit of its
// own; the loop waits on fd() or, for a source without one, calls read() every poll_interval().
class WatchSource {
 public:
  virtual ~WatchSource() = default;
  virtual std::string_view name() const = 0;
  // Readable when events wait; -1 for a source that is polled.
  virtual int fd() const = 0;
  virtual std::optional<std::chrono::milliseconds> poll_interval() const { return std::nullopt; }
  // Appends what is waiting, without blocking.
  virtual Status read(std::vector<WatchEvent>& out) = 0;
  // Events the kernel could not hand over so far (full buffers, sequence gaps): a running total.
  virtual uint64_t lost() const = 0;
  // Appends the notices since the last call (none for most sources).
  virtual void take_notices(std::vector<WatchNotice>& /*out*/) {}
};

// An event with what dpinspect makes of it.
struct WatchLine {
  WatchEvent event;
  std::optional<calico::NflogPrefix> prefix;  // parsed nflog prefix
  std::string iif, oif;                       // interface names (from the node's interfaces)
  std::optional<Report> report;               // the static evaluator on the event's flow
  std::string error;                          // why there is no report
  // Whether the log prefix and the report name the same verdict (and tier, at the end of a tier);
  // nullopt when there is nothing to compare.
  std::optional<bool> agrees;
};

// The events `watch` shows without --all: drops, log events whose prefix says deny (or that
// cannot be parsed: never hidden), and counters of deny rules (or of rules not attributed).
bool is_denial(const WatchEvent& e);

// Explains events with one dataplane, caching by flow (a retransmitted packet is explained once).
class WatchExplainer {
 public:
  explicit WatchExplainer(const LoadedDataplane& dp);
  WatchLine explain(const WatchEvent& e);

 private:
  const LoadedDataplane& dp_;
  std::map<std::string, Result<Report>> cache_;
};

// One line of text, and the dpinspect.watch/v1 JSON object of an event (docs/watch.md).
std::string watch_line_text(const WatchLine& l);
nlohmann::json watch_line_json(const WatchLine& l);

// At most `per_second` events shown each second; the rest are counted.
class WatchRateLimit {
 public:
  explicit WatchRateLimit(unsigned per_second) : per_second_(per_second) {}
  bool admit(std::chrono::steady_clock::time_point now);
  // Events refused since the last call.
  uint64_t take_suppressed();

 private:
  unsigned per_second_;
  std::chrono::steady_clock::time_point window_{};
  unsigned in_window_ = 0;
  uint64_t suppressed_ = 0;
};

// Counts for the summary printed when watch ends.
class WatchSummary {
 public:
  void add(const WatchLine& l);
  void add_suppressed(uint64_t n) { suppressed_ += n; }
  void set_lost(const std::string& source, uint64_t n) { lost_[source] = n; }
  void add_notice(const WatchNotice& n);
  uint64_t events() const { return events_; }
  std::string text(std::size_t top = 10) const;
  nlohmann::json as_json(std::size_t top = 10) const;

 private:
  uint64_t events_ = 0, suppressed_ = 0;
  std::map<std::string, uint64_t> by_reason_;
  std::map<std::string, uint64_t> by_source_;
  std::map<std::string, uint64_t> lost_;
  // counters: the packets each rule counted, by reason (one event is one poll's delta).
  std::map<std::string, uint64_t> packets_by_reason_;
  std::vector<WatchNotice> notices_;  // the first kMaxNotices
  uint64_t notices_total_ = 0;
  static constexpr std::size_t kMaxNotices = 20;
  static std::vector<std::pair<std::string, uint64_t>> ranked(
      const std::map<std::string, uint64_t>& by, std::size_t top);
};

}  // namespace dpi
