// Runs Catch2's session (catch_runner.cpp): the mains call it without including catch.hpp, whose
// Session is only declared where the implementation is compiled.
#pragma once

namespace dpi::test {

int run_catch(int argc, char* argv[]);

}  // namespace dpi::test
