// SHA-256 (FIPS 180-4), for the kernel's program tag on current kernels (not for security).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace dpi::ebpf {

std::array<uint8_t, 32> sha256(std::span<const uint8_t> data);

}  // namespace dpi::ebpf
