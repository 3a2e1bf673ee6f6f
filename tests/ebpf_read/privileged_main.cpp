// Kernel tests: they load programs and mount a private bpffs, so they need root; without it the
// whole binary is skipped (exit 77 is ctest's SKIP_RETURN_CODE).
#define CATCH_CONFIG_RUNNER
#include <cstdio>
#include <unistd.h>

#include <catch2/catch.hpp>

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::puts("ebpf_read_privileged: skipped, needs root (BPF programs, a private bpffs)");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
