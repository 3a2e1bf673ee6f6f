#include "core/compare_html.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/report_text.h"

namespace dpi {

namespace {

// Text for an element or a quoted attribute. Control characters other than tab and line feed are
// not allowed in HTML: they become U+FFFD. In attributes a line feed is kept as a character
// reference so that each cell stays on one line of the page.
std::string html_text(std::string_view s, bool attribute = false) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\n': out += attribute ? "&#10;" : "\n"; break;
      case '\t': out += ch; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
          out += "\xEF\xBF\xBD";
        else
          out += ch;
    }
  }
  return out;
}

std::string html_attr(std::string_view s) {
  return html_text(s, true);
}

// The matrix a flow belongs to: protocol and destination port ("tcp/80"), ICMP type and code.
std::string matrix_port(const Flow& f) {
  std::string s = l4proto_name(f.l4proto);
  if (f.dport) s += fmt::format("/{}", *f.dport);
  if (f.icmp_type) s += fmt::format(" type {} code {}", *f.icmp_type, f.icmp_code.value_or(0));
  return s;
}

bool address_less(const IpAddr& a, const IpAddr& b) {
  if (a.family != b.family) return a.family < b.family;
  return a.bytes < b.bytes;
}

// Which outcome a cell of several flows shows: the one that needs looking at first.
int cell_severity(FlowOutcome o) {
  switch (o) {
    case FlowOutcome::verdict: return 4;
    case FlowOutcome::indeterminate: return 3;
    case FlowOutcome::meaning: return 2;
    case FlowOutcome::same_deny: return 1;
    case FlowOutcome::same_allow: return 0;
  }
  return 4;
}

// The few characters a cell shows, so that the matrix reads without colour too.
std::string cell_word(const FlowComparison& f) {
  std::string before{verdict_name(f.before.verdict)};
  switch (outcome_of(f)) {
    case FlowOutcome::same_allow:
    case FlowOutcome::same_deny: return before;
    case FlowOutcome::verdict:
      return before + "\u2192" + std::string(verdict_name(f.after.verdict));
    case FlowOutcome::meaning: return before + "*";
    case FlowOutcome::indeterminate: return "?";
  }
  return "?";
}

struct PortMatrix {
  std::string port;
  std::vector<IpAddr> srcs, dsts;
  // (source index, destination index) -> flow indices, in the comparison's order.
  std::map<std::pair<std::size_t, std::size_t>, std::vector<std::size_t>> cells;
};

std::size_t index_in(const std::vector<IpAddr>& v, const IpAddr& a) {
  return static_cast<std::size_t>(std::find(v.begin(), v.end(), a) - v.begin());
}

// Ports in the order their first flow comes (compare --port's order); sources and destinations
// by address.
std::vector<PortMatrix> matrices_of(const Comparison& c) {
  std::vector<PortMatrix> out;
  std::vector<std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < c.flows.size(); ++i) {
    const Flow& f = c.flows[i].before.flow;
    std::string port = matrix_port(f);
    auto m =
        std::find_if(out.begin(), out.end(), [&](const PortMatrix& x) { return x.port == port; });
    if (m == out.end()) {
      out.push_back({port, {}, {}, {}});
      members.emplace_back();
      m = out.end() - 1;
    }
    members[static_cast<std::size_t>(m - out.begin())].push_back(i);
    if (std::find(m->srcs.begin(), m->srcs.end(), f.src) == m->srcs.end()) m->srcs.push_back(f.src);
    if (std::find(m->dsts.begin(), m->dsts.end(), f.dst) == m->dsts.end()) m->dsts.push_back(f.dst);
  }
  for (std::size_t k = 0; k < out.size(); ++k) {
    PortMatrix& m = out[k];
    std::sort(m.srcs.begin(), m.srcs.end(), address_less);
    std::sort(m.dsts.begin(), m.dsts.end(), address_less);
    for (std::size_t i : members[k]) {
      const Flow& f = c.flows[i].before.flow;
      m.cells[{index_in(m.srcs, f.src), index_in(m.dsts, f.dst)}].push_back(i);
    }
  }
  return out;
}

// What each address is called in the flows that name it ("client/client", "service ns/svc").
std::map<std::string, std::string> names_of(const Comparison& c) {
  std::map<std::string, std::string> names;
  for (const auto& f : c.flows) {
    if (!f.before.src_name.empty()) names.emplace(f.before.flow.src.str(), f.before.src_name);
    if (!f.before.dst_name.empty()) names.emplace(f.before.flow.dst.str(), f.before.dst_name);
  }
  return names;
}

std::string endpoint_label(const std::map<std::string, std::string>& names, const IpAddr& a) {
  auto n = names.find(a.str());
  if (n == names.end()) return fmt::format("<span class=\"name\">{}</span>", html_text(a.str()));
  return fmt::format("<span class=\"name\">{}</span><span class=\"addr\">{}</span>",
                     html_text(n->second), html_text(a.str()));
}

std::string flow_names(const FlowComparison& f) {
  const Flow& fl = f.before.flow;
  return fmt::format("{} -> {}", f.before.src_name.empty() ? fl.src.str() : f.before.src_name,
                     f.before.dst_name.empty() ? fl.dst.str() : f.before.dst_name);
}

std::string side_html(const char* which, const Report& r) {
  std::string out =
      fmt::format("<div class=\"side\" data-side=\"{}\"><h4>{}</h4><dl>", which, which);
  out += fmt::format("<dt>verdict</dt><dd data-field=\"verdict\">{}</dd>",
                     html_text(verdict_name(r.verdict)));
  out += fmt::format("<dt>decided by</dt><dd data-field=\"summary\">{}</dd>",
                     html_text(r.decided_by.summary));
  if (r.indeterminate_reason)
    out += fmt::format("<dt>why undecided</dt><dd data-field=\"indeterminate_reason\">{}</dd>",
                       html_text(r.indeterminate_reason->why));
  if (r.decided_by.rule)
    out += fmt::format(
        "<dt>rule</dt><dd><code data-field=\"rule\">{}</code><span class=\"loc\" "
        "data-field=\"rule_location\">{}</span></dd>",
        html_text(r.decided_by.rule->text), html_text(rule_location(*r.decided_by.rule)));
  out += fmt::format("<dt>meaning</dt><dd class=\"meaning\" data-field=\"meaning\">{}</dd>",
                     html_text(meaning_of(r)));
  return out + "</dl></div>";
}

std::string flow_html(std::size_t i, const FlowComparison& f) {
  const FlowOutcome o = outcome_of(f);
  std::string out = fmt::format(
      "<article class=\"flow\" data-flow=\"{}\" data-outcome=\"{}\" data-change=\"{}\">\n", i,
      outcome_name(o), change_name(f.change));
  out += fmt::format("<h3><span class=\"tag o-{}\">{}</span> {}</h3>\n", outcome_name(o),
                     html_text(outcome_label(o)), html_text(describe(f.before.flow)));
  if (!f.before.src_name.empty() || !f.before.dst_name.empty())
    out += fmt::format("<p class=\"names\">{}</p>\n", html_text(flow_names(f)));
  out += "<div class=\"sides\">" + side_html("before", f.before) + side_html("after", f.after) +
         "</div>\n</article>\n";
  return out;
}

std::string cell_html(const Comparison& c, const PortMatrix& m, const IpAddr& src,
                      const IpAddr& dst, const std::vector<std::size_t>& flows) {
  std::size_t worst = flows.front();
  for (std::size_t i : flows)
    if (cell_severity(outcome_of(c.flows[i])) > cell_severity(outcome_of(c.flows[worst])))
      worst = i;
  const FlowOutcome o = outcome_of(c.flows[worst]);
  std::string ids, title;
  for (std::size_t i : flows) {
    const FlowComparison& f = c.flows[i];
    ids += (ids.empty() ? "" : " ") + std::to_string(i);
    title += fmt::format("{}{} {}\n{}\nbefore: {}\nafter: {}", title.empty() ? "" : "\n\n",
                         flow_names(f), m.port, outcome_label(outcome_of(f)), explain(f.before),
                         explain(f.after));
  }
  std::string word = cell_word(c.flows[worst]);
  if (flows.size() > 1) word += fmt::format(" \u00d7{}", flows.size());
  return fmt::format(
      "<td class=\"cell o-{}\" tabindex=\"0\" data-outcome=\"{}\" data-src=\"{}\" data-dst=\"{}\" "
      "data-port=\"{}\" data-flows=\"{}\" title=\"{}\">{}</td>",
      outcome_name(o), outcome_name(o), html_attr(src.str()), html_attr(dst.str()),
      html_attr(m.port), ids, html_attr(title), html_text(word));
}

std::string matrix_html(const Comparison& c, const PortMatrix& m,
                        const std::map<std::string, std::string>& names) {
  std::size_t flows = 0, changed = 0;
  for (const auto& [at, ids] : m.cells)
    for (std::size_t i : ids) {
      ++flows;
      changed += c.flows[i].change != Change::same;
    }
  std::string out = fmt::format("<section class=\"port\" data-port=\"{}\">\n", html_attr(m.port));
  out += fmt::format("<h2>{} <small>{} flow{}, {} changed</small></h2>\n", html_text(m.port), flows,
                     flows == 1 ? "" : "s", changed);
  out += fmt::format("<table class=\"matrix\" data-port=\"{}\">\n<thead><tr>", html_attr(m.port));
  out += "<th class=\"corner\">source \u2193 destination \u2192</th>";
  for (const auto& d : m.dsts)
    out += fmt::format("<th scope=\"col\" data-dst=\"{}\">{}</th>", html_attr(d.str()),
                       endpoint_label(names, d));
  out += "</tr></thead>\n<tbody>\n";
  for (std::size_t s = 0; s < m.srcs.size(); ++s) {
    out += fmt::format("<tr><th scope=\"row\" data-src=\"{}\">{}</th>", html_attr(m.srcs[s].str()),
                       endpoint_label(names, m.srcs[s]));
    for (std::size_t d = 0; d < m.dsts.size(); ++d) {
      auto cell = m.cells.find({s, d});
      out += cell == m.cells.end() ? "<td class=\"empty\"></td>"
                                   : cell_html(c, m, m.srcs[s], m.dsts[d], cell->second);
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n</section>\n";
}

constexpr const char* kStyle = R"(<style>
:root { --same-allow: #a6dba0; --same-deny: #cfd3da; --verdict: #d73027; --meaning: #fdae61;
  --indeterminate: #8073ac; font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; }
body { margin: 1.2em; color: #1d2228; background: #fff; font-size: 14px; }
h1 { font-size: 1.4em; margin: 0 0 .4em; }
h2 { font-size: 1.1em; margin: .2em 0 .4em; }
h2 small { font-weight: normal; color: #555; }
.head { display: flex; flex-wrap: wrap; align-items: flex-start; gap: .5em 3em; margin-bottom: .6em; }
dl.sources { display: grid; grid-template-columns: max-content auto; gap: .1em .8em; margin: 0; }
dl.sources dt { font-weight: bold; }
dl.sources dd { margin: 0; font-family: "DejaVu Sans Mono", monospace; font-size: .92em; }
table.legend { border-collapse: collapse; }
table.legend td { padding: .15em .6em .15em 0; }
table.legend td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.legend tr.total td { border-top: 1px solid #999; font-weight: bold; }
.swatch { display: inline-block; width: 1.4em; height: 1em; border: 1px solid #777; vertical-align: middle; }
.o-same-allow { background: var(--same-allow); color: #143d10; }
.o-same-deny { background: var(--same-deny); color: #262b31; }
.o-verdict { background: var(--verdict); color: #fff; }
.o-meaning { background: var(--meaning); color: #3d2400; }
.o-indeterminate { background: var(--indeterminate); color: #fff; }
.hint { color: #555; margin: 0 0 1em; }
.layout { display: flex; align-items: flex-start; gap: 1.5em; }
.matrices { display: flex; flex-wrap: wrap; gap: 1.2em 2em; flex: 1 1 0; min-width: 0;
  overflow-x: auto; }
table.matrix { border-collapse: collapse; }
table.matrix th { font-weight: normal; padding: .25em .5em; text-align: left; vertical-align: bottom; }
table.matrix th .name { display: block; font-weight: bold; }
table.matrix th .addr { display: block; color: #555; font-size: .85em; font-family: "DejaVu Sans Mono", monospace; }
table.matrix th.corner { color: #777; font-size: .8em; }
table.matrix td { width: 5.2em; height: 2.4em; text-align: center; border: 2px solid #fff; padding: 0 .3em; }
td.cell { cursor: pointer; font-family: "DejaVu Sans Mono", monospace; font-size: .9em; }
td.cell:hover, td.cell:focus { outline: 2px solid #1d2228; outline-offset: -2px; }
td.cell.selected { outline: 3px solid #000; outline-offset: -3px; }
td.empty { background: repeating-linear-gradient(45deg, #f4f4f4, #f4f4f4 4px, #fff 4px, #fff 8px); }
#detail { flex: 0 1 28em; min-width: 18em; position: sticky; top: 1em; border: 1px solid #bbb;
  border-radius: 4px; padding: .6em .9em; background: #fafafa; }
#detail .placeholder { color: #555; }
article.flow + article.flow { border-top: 1px solid #ccc; margin-top: .6em; }
article.flow h3 { font-size: 1em; margin: .3em 0; font-family: "DejaVu Sans Mono", monospace; font-weight: normal; }
.tag { font-family: "DejaVu Sans", sans-serif; padding: .05em .4em; border-radius: 3px; margin-right: .3em; }
.names { margin: .2em 0 .5em; font-weight: bold; }
.side h4 { margin: .4em 0 .2em; text-transform: uppercase; font-size: .8em; color: #444; }
.side dl { display: grid; grid-template-columns: max-content auto; gap: .15em .7em; margin: 0; }
.side dt { color: #555; }
.side dd { margin: 0; overflow-wrap: anywhere; }
.side code { display: block; font-size: .88em; background: #eef0f3; padding: .1em .3em; }
.side .loc { display: block; color: #555; font-size: .85em; font-family: "DejaVu Sans Mono", monospace; }
.side .meaning { font-size: .85em; color: #444; }
</style>
)";

// Shows the clicked (or Enter-ed) cell's flows in the panel: copies of the hidden articles, so no
// text is ever parsed as HTML here.
constexpr const char* kScript = R"(<script>
(function () {
  var detail = document.getElementById("detail");
  var flows = document.getElementById("flows");
  var selected = null;
  function show(cell) {
    if (selected) selected.classList.remove("selected");
    selected = cell;
    cell.classList.add("selected");
    detail.textContent = "";
    var head = document.createElement("h2");
    head.setAttribute("data-field", "cell");
    var src = cell.parentNode.querySelector("th .name");
    var dst = cell.closest("table").querySelectorAll("thead th")[cell.cellIndex].querySelector(".name");
    head.textContent = cell.getAttribute("data-port") + ": " + src.textContent + " \u2192 " +
      dst.textContent;
    detail.appendChild(head);
    cell.getAttribute("data-flows").split(" ").forEach(function (i) {
      detail.appendChild(flows.querySelector('article[data-flow="' + i + '"]').cloneNode(true));
    });
  }
  document.addEventListener("click", function (e) {
    var cell = e.target.closest && e.target.closest("td[data-flows]");
    if (cell) show(cell);
  });
  document.addEventListener("keydown", function (e) {
    if ((e.key === "Enter" || e.key === " ") && e.target.matches("td[data-flows]")) {
      e.preventDefault();
      show(e.target);
    }
  });
})();
</script>
)";

}  // namespace

std::string render_html(const Comparison& c) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      // Nothing but this page's own style and script: no network, whatever the text holds.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
      "'unsafe-inline'; script-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>dpinspect compare</title>\n";
  out += kStyle;
  out +=
      "</head>\n<body>\n<h1>dpinspect compare</h1>\n<div class=\"head\">\n<dl class=\"sources\">";
  out +=
      fmt::format("<dt>before</dt><dd data-field=\"before\">{}</dd>", html_text(c.before_source));
  out += fmt::format("<dt>after</dt><dd data-field=\"after\">{}</dd>", html_text(c.after_source));
  if (!c.names_source.empty())
    out += fmt::format("<dt>names</dt><dd data-field=\"names\">{}</dd>", html_text(c.names_source));
  out += "</dl>\n<table class=\"legend\" id=\"counts\">\n";
  for (FlowOutcome o : kFlowOutcomes)
    out += fmt::format(
        "<tr data-outcome=\"{}\"><td><span class=\"swatch o-{}\"></span></td><td>{}</td>"
        "<td class=\"n\">{}</td></tr>\n",
        outcome_name(o), outcome_name(o), outcome_label(o), c.count(o));
  out += fmt::format(
      "<tr class=\"total\"><td></td><td>all flows</td><td "
      "class=\"n\">{}</td></tr>\n</table>\n</div>\n",
      c.flows.size());
  out +=
      "<p class=\"hint\">Rows are sources, columns destinations, one matrix per port. A cell "
      "shows the verdict before (\u2192 after when it changed, * when decided differently, ? when "
      "undecided); click it, or hover it, for both sides' explanations.</p>\n"
      "<div class=\"layout\">\n<div class=\"matrices\">\n";
  const auto names = names_of(c);
  for (const PortMatrix& m : matrices_of(c)) out += matrix_html(c, m, names);
  out +=
      "</div>\n<aside id=\"detail\" aria-live=\"polite\"><p class=\"placeholder\">Click a cell to "
      "see how each side decided its flow.</p></aside>\n</div>\n<div id=\"flows\" hidden>\n";
  for (std::size_t i = 0; i < c.flows.size(); ++i) out += flow_html(i, c.flows[i]);
  out += "</div>\n";
  out += kScript;
  return out + "</body>\n</html>\n";
}

}  // namespace dpi
