#include "core/compare_markdown.h"

#include <fmt/format.h>

namespace dpi {

namespace {

// Backslash-escapes what could start emphasis, code, links, HTML, a table cell or a heading's
// closing sequence, and folds line breaks: one input string stays one run of plain text.
std::string md_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '<':
      case '|':
      case '#':
      case '~':
      case '&':
        out += '\\';
        out += ch;
        break;
      case '\n':
      case '\r': out += ' '; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace

std::string render_markdown(const Comparison& c, bool all) {
  std::string out = "# dpinspect compare\n\n";
  out +=
      fmt::format("- before: {}\n- after: {}\n", md_text(c.before_source), md_text(c.after_source));
  if (!c.names_source.empty()) out += fmt::format("- names: {}\n", md_text(c.names_source));
  out += "\n| outcome | flows |\n|---|---:|\n";
  for (FlowOutcome o : kFlowOutcomes)
    out += fmt::format("| {} | {} |\n", outcome_label(o), c.count(o));
  out += fmt::format("| all flows | {} |\n", c.flows.size());

  const std::size_t changed = c.flows.size() - c.count(Change::same);
  if (all)
    out += fmt::format("\n## Flows ({})\n", c.flows.size());
  else if (changed == 0)
    out += "\nNo flow changed.\n";
  else
    out += fmt::format("\n## Changed flows ({})\n", changed);
  for (const auto& f : c.flows) {
    if (f.change == Change::same && !all) continue;
    out += fmt::format("\n### {} {}\n\n", change_tag(f.change), md_text(describe(f.before.flow)));
    if (!f.before.src_name.empty() || !f.before.dst_name.empty())
      out +=
          fmt::format("{} -> {}\n\n", f.before.src_name.empty() ? "?" : md_text(f.before.src_name),
                      f.before.dst_name.empty() ? "?" : md_text(f.before.dst_name));
    out += fmt::format("- before: {}\n- after: {}\n", md_text(explain(f.before)),
                       md_text(explain(f.after)));
  }
  return out;
}

}  // namespace dpi
