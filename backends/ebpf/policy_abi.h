// How a Calico policy program is called and how it answers, as both engines (the interpreter,
// policy_runner.cpp, and the kernel, kernel_policy.cpp) set it up: one definition, so the two
// cannot drift apart and disagree for a reason of our own making.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dpi::ebpf::policy_abi {

// Felix puts sub-program k of the policy at jump-map index idx + k * kSubProgStride.
inline constexpr uint32_t kSubProgStride = 10000;
// The stubs' return values (Calico's pol_prog_test.go uses the same pair) and their slots in the
// static-program array, which calico_tc_main passes in skb->cb[0] / cb[1].
inline constexpr uint32_t kAllowRc = 123;
inline constexpr uint32_t kDenyRc = 124;
inline constexpr uint32_t kAllowSlot = 0;
inline constexpr uint32_t kDenySlot = 1;
inline constexpr std::size_t kSkbSize = 192;
inline constexpr std::size_t kCb0 = 48;
inline constexpr std::size_t kCb1 = 52;

}  // namespace dpi::ebpf::policy_abi
