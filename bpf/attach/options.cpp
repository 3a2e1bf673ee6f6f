#include "options.h"

#include <arpa/inet.h>

#include "error.h"

namespace dpl {
namespace {

constexpr std::array kVersions{
    VersionMaps{"3.30",
                "cali_state4",
                "cali_v4_ct3",
                "cali_counters3",
                "cali_progs3",
                "cali_progs3",
                "cali_jump3",
                "cali_jump3",
                "cali_v6_ct3",
                {2, 12},
                {4, 14}},
    VersionMaps{"3.32",
                "cali_state6",
                "cali_v4_ct4",
                "cali_counters6",
                "cali_progs_ing2",
                "cali_progs_egr2",
                "cali_jump_ing2",
                "cali_jump_egr2",
                "cali_v6_ct4",
                {2, 2},
                {4, 4}},
};

constexpr const char* kUsage =
    "usage: dpl-ebpf-attach --globals DIR --version 3.30|3.32 [--host-ip A.B.C.D] --iface NAME... "
    "[--hep NAME...]";

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  std::string version;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc)
      throw AttachError{"missing value after " + std::string(arg) + " (" + kUsage + ")"};
    std::string value = argv[++i];
    if (arg == "--globals") {
      o.globals = value;
    } else if (arg == "--version") {
      version = value;
    } else if (arg == "--host-ip") {
      if (inet_pton(AF_INET, value.c_str(), &o.host_ip) != 1)
        throw AttachError{"--host-ip: not an IPv4 address: " + value};
    } else if (arg == "--iface") {
      o.ifaces.push_back(value);
    } else if (arg == "--hep") {
      o.heps.push_back(value);
    } else {
      throw AttachError{"unknown option " + std::string(arg) + " (" + kUsage + ")"};
    }
  }
  for (const auto& v : kVersions)
    if (v.version == version) o.maps = &v;
  if (!o.maps) throw AttachError{"--version: expected 3.30 or 3.32, got '" + version + "'"};
  if (o.globals.empty()) throw AttachError{"--globals is required"};
  if (o.ifaces.empty()) throw AttachError{"at least one --iface is required"};
  return o;
}

}  // namespace dpl
