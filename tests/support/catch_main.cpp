// The one Catch2 main of every test binary: catch.hpp's runner is the slowest translation unit of
// the tree (~30 s), so it is compiled once (dpinspect_catch_main) and linked everywhere.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
