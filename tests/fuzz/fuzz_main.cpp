// libFuzzer's entry points for the one fuzz binary: LLVMFuzzerInitialize picks the target from
// the name the binary was started as (fuzz_<target>, or DPI_FUZZ_TARGET=<target> for the binary
// itself), runs its set-up, and every input goes to that target.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "fuzz_target.h"

namespace dpi::fuzz {

namespace {

struct Target {
  OneInput one = nullptr;
  Init init = nullptr;
};

std::map<std::string, Target>& targets() {
  static std::map<std::string, Target> all;
  return all;
}

OneInput selected = nullptr;

std::string chosen_name(const char* argv0) {
  if (const char* env = std::getenv("DPI_FUZZ_TARGET"); env && *env) return env;
  std::string base = argv0 ? argv0 : "";
  if (auto slash = base.rfind('/'); slash != std::string::npos) base.erase(0, slash + 1);
  const std::string prefix = "fuzz_";
  return base.rfind(prefix, 0) == 0 ? base.substr(prefix.size()) : base;
}

}  // namespace

bool register_one_input(const char* name, OneInput fn) {
  targets()[name].one = fn;
  return true;
}

bool register_init(const char* name, Init fn) {
  targets()[name].init = fn;
  return true;
}

}  // namespace dpi::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  using namespace dpi::fuzz;
  const std::string name = chosen_name(*argc > 0 ? (*argv)[0] : nullptr);
  auto it = targets().find(name);
  if (it == targets().end() || !it->second.one) {
    std::fprintf(stderr,
                 "dpinspect_fuzz: no fuzz target '%s'; start it as fuzz_<target> or set "
                 "DPI_FUZZ_TARGET. Targets:",
                 name.c_str());
    for (const auto& [n, t] : targets()) std::fprintf(stderr, " %s", n.c_str());
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  selected = it->second.one;
  if (it->second.init) it->second.init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return dpi::fuzz::selected(data, size);
}
