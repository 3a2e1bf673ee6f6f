// The Catch2 main of kernel test binaries (dpinspect_catch_main_root): they load BPF programs,
// mount a private bpffs or enter network namespaces, so without root the whole binary is skipped
// with one line (exit 77 is ctest's SKIP_RETURN_CODE).
// The runner itself is catch_runner.cpp, compiled once.
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "tests/support/catch_run.h"

int main(int argc, char* argv[]) {
  if (geteuid() != 0) {
    const char* slash = argc > 0 ? std::strrchr(argv[0], '/') : nullptr;
    const char* name = slash != nullptr ? slash + 1 : (argc > 0 ? argv[0] : "test");
    std::printf("%s: skipped, needs root (BPF programs, a private bpffs, network namespaces)\n",
                name);
    return 77;
  }
  return dpi::test::run_catch(argc, argv);
}
