// The Catch2 main of kernel test binaries (dpinspect_catch_main_root): they load BPF programs,
// mount a private bpffs or enter network namespaces, so without root the whole binary is skipped
// with one line (exit 77 is ctest's SKIP_RETURN_CODE).
#define CATCH_CONFIG_RUNNER
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  if (geteuid() != 0) {
    const char* slash = argc > 0 ? std::strrchr(argv[0], '/') : nullptr;
    const char* name = slash != nullptr ? slash + 1 : (argc > 0 ? argv[0] : "test");
    std::printf("%s: skipped, needs root (BPF programs, a private bpffs, network namespaces)\n",
                name);
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
