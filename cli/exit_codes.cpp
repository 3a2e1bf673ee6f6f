#include "cli/exit_codes.h"

#include <string>

#include <fmt/format.h>

namespace dpi::cli {

int report_error(const Error& e, std::ostream& err) {
  // Names in messages come from the input (chain names, set names, file contents); a control
  // character in one must not break the one-line error or drive the terminal.
  std::string line;
  for (unsigned char c : e.message) {
    if (c < 0x20 || c == 0x7f)
      line += fmt::format("\\x{:02x}", c);
    else
      line += static_cast<char>(c);
  }
  err << "dpinspect: " << line << "\n";
  return exit_code_for(e);
}

}  // namespace dpi::cli
