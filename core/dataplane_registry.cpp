#include "core/dataplane_registry.h"

#include <algorithm>

#include <fmt/format.h>

namespace dpi {

const std::string& SourceRequest::option(const std::string& name) const {
  static const std::string kNone;
  auto it = options.find(name);
  return it == options.end() ? kNone : it->second;
}

const DataplaneBackend* find_dataplane(std::string_view name) {
  for (const DataplaneBackend* d : registered_dataplanes())
    if (d->name() == name) return d;
  return nullptr;
}

namespace {

std::string registered_names() {
  std::string out;
  for (const DataplaneBackend* d : registered_dataplanes())
    out += (out.empty() ? "" : ", ") + std::string(d->name());
  return out.empty() ? "none" : out;
}

Error not_registered(const std::string& wanted) {
  bool known = std::find(known_dataplanes().begin(), known_dataplanes().end(), wanted) !=
               known_dataplanes().end();
  return make_error(ErrorCode::bad_input,
                    fmt::format("--dataplane {}: looked for a backend named \"{}\" among this "
                                "dpinspect's backends ({}) and found none{}; use --dataplane auto "
                                "or one of those",
                                wanted, wanted, registered_names(),
                                known ? ": reading this dataplane is not supported yet" : ""));
}

Result<std::unique_ptr<LoadedDataplane>> load_one(const DataplaneBackend& d,
                                                  const SourceRequest& req) {
  if (auto st = d.check(req); !st) return st.error();
  return d.load(req);
}

}  // namespace

Result<std::vector<std::unique_ptr<LoadedDataplane>>> load_dataplanes(const std::string& wanted,
                                                                      const SourceRequest& req) {
  std::vector<const DataplaneBackend*> candidates;
  if (wanted != "auto") {
    const DataplaneBackend* d = find_dataplane(wanted);
    if (!d) return not_registered(wanted);
    candidates.push_back(d);
  } else {
    for (const DataplaneBackend* d : registered_dataplanes())
      if (d->claims(req)) candidates.push_back(d);
    if (candidates.empty()) candidates = registered_dataplanes();
  }
  if (candidates.empty()) return not_registered(wanted);
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

std::string dataplane_choices_help() {
  std::string s = "auto (whatever is there)";
  for (const std::string& name : known_dataplanes()) {
    const DataplaneBackend* d = find_dataplane(name);
    s += fmt::format(", {} ({})", name, d ? std::string(d->summary()) : "not yet supported");
  }
  return s;
}

}  // namespace dpi
