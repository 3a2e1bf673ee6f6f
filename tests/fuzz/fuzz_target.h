// Every fuzz target lives in one binary (dpinspect_fuzz): the targets share most of their headers,
// and one binary compiles them once instead of once per target. The build links fuzz_<name> to it,
// and the name a run was started as picks the target (fuzz_main.cpp), so `fuzz_<name> [libFuzzer
// options] [corpus]` behaves as a binary of its own would.
//
//   DPI_FUZZ_INIT(name) { ...once, before the first input... }
//   DPI_FUZZ_ONE_INPUT(name) { ...uses `data` and `size`; returns 0... }
#pragma once

#include <cstddef>
#include <cstdint>

namespace dpi::fuzz {

using OneInput = int (*)(const std::uint8_t* data, std::size_t size);
using Init = void (*)();

bool register_one_input(const char* name, OneInput fn);
bool register_init(const char* name, Init fn);

}  // namespace dpi::fuzz

#define DPI_FUZZ_INIT(name)                                            \
  static void dpi_fuzz_init_##name();                                  \
  [[maybe_unused]] static const bool dpi_fuzz_init_registered_##name = \
      ::dpi::fuzz::register_init(#name, &dpi_fuzz_init_##name);        \
  static void dpi_fuzz_init_##name()

#define DPI_FUZZ_ONE_INPUT(name)                                              \
  static int dpi_fuzz_one_##name(const std::uint8_t* data, std::size_t size); \
  [[maybe_unused]] static const bool dpi_fuzz_one_registered_##name =         \
      ::dpi::fuzz::register_one_input(#name, &dpi_fuzz_one_##name);           \
  static int dpi_fuzz_one_##name(const std::uint8_t* data, std::size_t size)
