// The usual visitor helper: one lambda per alternative, and a missing alternative is a compile
// error rather than a silent fall-through.
#pragma once

namespace dpi {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace dpi
