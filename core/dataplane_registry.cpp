#include "core/dataplane_registry.h"

#include <algorithm>

#include <fmt/format.h>

namespace dpi {

const std::string& SourceRequest::option(const std::string& name) const {
  static const std::string kNone;
  auto it = options.find(name);
  return it == options.end() ? kNone : it->second;
}

DataplaneRegistry::DataplaneRegistry(std::vector<const DataplaneBackend*> backends,
                                     std::vector<std::string> also_known)
    : backends_(std::move(backends)) {
  for (const DataplaneBackend* d : backends_) known_.emplace_back(d->name());
  for (auto& name : also_known)
    if (std::find(known_.begin(), known_.end(), name) == known_.end())
      known_.push_back(std::move(name));
  std::stable_sort(backends_.begin(), backends_.end(),
                   [](const DataplaneBackend* a, const DataplaneBackend* b) {
                     return static_cast<int>(a->layer()) < static_cast<int>(b->layer());
                   });
}

const DataplaneBackend* DataplaneRegistry::find(std::string_view name) const {
  for (const DataplaneBackend* d : backends_)
    if (d->name() == name) return d;
  return nullptr;
}

namespace {

std::string registered_names(const DataplaneRegistry& reg) {
  std::string out;
  for (const DataplaneBackend* d : reg.backends())
    out += (out.empty() ? "" : ", ") + std::string(d->name());
  return out.empty() ? "none" : out;
}

Error not_registered(const DataplaneRegistry& reg, const std::string& wanted) {
  bool known = std::find(reg.known().begin(), reg.known().end(), wanted) != reg.known().end();
  return make_error(ErrorCode::bad_input,
                    fmt::format("--dataplane {}: looked for a backend named \"{}\" among this "
                                "dpinspect's backends ({}) and found none{}; use --dataplane auto "
                                "or one of those",
                                wanted, wanted, registered_names(reg),
                                known ? ": reading this dataplane is not supported yet" : ""));
}

Result<std::unique_ptr<LoadedDataplane>> load_one(const DataplaneBackend& d,
                                                  const SourceRequest& req) {
  if (auto st = d.check(req); !st) return st.error();
  return d.load(req);
}

}  // namespace

Result<std::vector<std::unique_ptr<LoadedDataplane>>> DataplaneRegistry::load(
    const std::string& wanted, const SourceRequest& req) const {
  std::vector<const DataplaneBackend*> candidates;
  if (wanted != "auto") {
    const DataplaneBackend* d = find(wanted);
    if (!d) return not_registered(*this, wanted);
    candidates.push_back(d);
  } else {
    for (const DataplaneBackend* d : backends_)
      if (d->claims(req)) candidates.push_back(d);
    if (candidates.empty()) candidates = backends_;
  }
  if (candidates.empty()) return not_registered(*this, wanted);
  std::vector<std::unique_ptr<LoadedDataplane>> out;
  if (candidates.size() == 1) {
    auto l = load_one(*candidates.front(), req);
    if (!l) return l.error();
    out.push_back(std::move(*l));
    return out;
  }
  // Several could apply: read each, keep the ones that find Calico (a node in eBPF mode still
  // has nftables rules; both are returned, in packet order), or the first when none does.
  std::vector<std::unique_ptr<LoadedDataplane>> all;
  // not_found from a backend means "nothing of mine here"; any other error (a dataplane that is
  // there but cannot be read) is the one to report.
  std::optional<Error> first_error;
  std::optional<Error> first_failure;
  for (const DataplaneBackend* d : candidates) {
    auto l = load_one(*d, req);
    if (!l) {
      if (!first_error) first_error = l.error();
      if (!first_failure && l.error().code != ErrorCode::not_found) first_failure = l.error();
      continue;
    }
    all.push_back(std::move(*l));
  }
  if (all.empty()) return first_failure ? *first_failure : *first_error;
  for (auto& l : all)
    if (l->detect().found) out.push_back(std::move(l));
  // No backend found Calico, and one could not read what it was given: its error, not a verdict
  // from a dataplane that has nothing of Calico's.
  if (out.empty() && first_failure) return *first_failure;
  if (out.empty()) {
    for (auto& l : all)
      if (l) {
        out.push_back(std::move(l));
        break;
      }
  }
  return out;
}

std::string DataplaneRegistry::choices_help() const {
  std::string s = "auto (whatever is there)";
  for (const std::string& name : known_) {
    const DataplaneBackend* d = find(name);
    s += fmt::format(", {} ({})", name, d ? std::string(d->summary()) : "not yet supported");
  }
  return s;
}

}  // namespace dpi
