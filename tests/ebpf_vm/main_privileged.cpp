// The kernel agreement tests need root (CAP_BPF, CAP_NET_ADMIN): without it they are skipped
// (exit 77) with one line.
#define CATCH_CONFIG_RUNNER
#include <cstdio>
#include <unistd.h>

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  if (geteuid() != 0) {
    std::puts("ebpf_vm_agreement: skipped, needs root to load BPF programs");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
