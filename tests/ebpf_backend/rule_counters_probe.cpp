// The lab's window on LoadedDataplane::read_rule_counters (no command prints it yet): loads the
// live eBPF node at --bpffs / --policy-debug-dir through the backend, as `inspect` does, and
// prints every rule counter as one JSON object per line ({"rule": <report rule>, "packets": N}),
// --reads times through the same loaded dataplane (each read is a fresh read of the map).
// tests/lab/test_ebpf_walkthrough.py compares it with the packets it sent.
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "backends/ebpf/dataplane.h"
#include "core/report_json.h"

int main(int argc, char** argv) {
  dpi::SourceRequest req;
  int reads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view opt = argv[i];
    if (opt == "--bpffs" || opt == "--policy-debug-dir") {
      std::string name(opt.substr(2));
      req.options[name] = argv[i + 1];
      req.given.insert(name);
    } else if (opt == "--reads") {
      reads = std::atoi(argv[i + 1]);
    } else {
      std::cerr << "usage: rule_counters_probe --bpffs DIR --policy-debug-dir DIR [--reads N]\n";
      return 3;
    }
  }
  dpi::ebpf::EbpfDataplane backend;
  auto loaded = backend.load(req);
  if (!loaded) {
    std::cerr << "load: " << loaded.error().message << "\n";
    return 3;
  }
  for (int r = 0; r < reads; ++r) {
    auto all = (*loaded)->read_rule_counters();
    if (!all) {
      std::cerr << "read_rule_counters: " << all.error().message << "\n";
      return 3;
    }
    for (const auto& [rule, counter] : *all)
      std::cout << nlohmann::json{{"read", r},
                                  {"rule", dpi::to_json(rule)},
                                  {"packets", counter.packets},
                                  {"bytes", counter.bytes ? nlohmann::json(*counter.bytes)
                                                          : nlohmann::json(nullptr)}}
                       .dump()
                << "\n";
  }
  return 0;
}
