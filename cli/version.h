#pragma once

namespace dpi::cli {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace dpi::cli
