// The engines test loads programs into the kernel: it needs root (CAP_BPF, CAP_NET_ADMIN), and
// is skipped (exit 77) with one line otherwise.
#define CATCH_CONFIG_RUNNER
#include <cstdio>
#include <unistd.h>

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  if (geteuid() != 0) {
    std::puts("ebpf_engines: skipped, needs root to load BPF programs");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
