// The report for humans: verdict and reason first, evidence after.
#pragma once

#include <string>

#include "core/report.h"

namespace dpi {

struct TextOptions {
  bool verbose = false;  // print the whole path, not only jumps and verdicts
};

std::string render_text(const Report& r, const TextOptions& opts = {});

}  // namespace dpi
