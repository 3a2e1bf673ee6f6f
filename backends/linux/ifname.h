#pragma once
// The name of a network interface by its index, in the calling thread's network namespace.

#include <cstdint>
#include <string>

namespace dpi::os {

// "ifindex N" when the index names no interface (gone since, or another namespace's).
std::string interface_name(uint32_t ifindex);

}  // namespace dpi::os
