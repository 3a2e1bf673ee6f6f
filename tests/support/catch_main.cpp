// The plain Catch2 main (dpinspect_catch_main); kernel tests that must skip without root use
// catch_main_root.cpp. The runner itself is catch_runner.cpp, compiled once.
#include "tests/support/catch_run.h"

int main(int argc, char* argv[]) {
  return dpi::test::run_catch(argc, argv);
}
