// dpinspect: why was this flow dropped (or allowed) on a Calico node?
#include <iostream>
#include <string>
#include <vector>

#include "cli/run.h"
#include "core/dataplane_registry.h"

int main(int argc, char** argv) {
  return dpi::cli::run(dpi::builtin_dataplanes(), std::vector<std::string>(argv + 1, argv + argc),
                       std::cout, std::cerr);
}
