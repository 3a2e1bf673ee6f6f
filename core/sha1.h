// SHA-1, for Calico's workload interface names (not for security): Felix names a pod's host-side
// veth from the hash of "<namespace>.<pod>".
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace dpi {

std::array<uint8_t, 20> sha1(std::string_view data);
std::string sha1_hex(std::string_view data);

}  // namespace dpi
