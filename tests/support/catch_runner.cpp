// Catch2's implementation, without a main: catch.hpp's runner is the slowest translation unit of
// the tree (~25 s), so it is compiled once (dpinspect_catch_runner) for both mains and every test
// binary links it.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tests/support/catch_run.h"

int dpi::test::run_catch(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}
