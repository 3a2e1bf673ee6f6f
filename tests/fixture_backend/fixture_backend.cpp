#include "tests/fixture_backend/fixture_backend.h"

#include <fmt/format.h>

#include "core/input_file.h"
#include "core/snapshot.h"

namespace dpi::fixture {

namespace {

using nlohmann::json;

Result<ErrorCode> error_code(const std::string& s) {
  if (s == "bad_input") return ErrorCode::bad_input;
  if (s == "not_found") return ErrorCode::not_found;
  if (s == "permission") return ErrorCode::permission;
  if (s == "system") return ErrorCode::system;
  return make_error(ErrorCode::bad_input, fmt::format("fixture table: unknown error \"{}\"", s));
}

bool same_flow(const json& row, const Flow& f) {
  auto proto = parse_l4proto(row.value("proto", "tcp"));
  return row.value("src", "") == f.src.str() && row.value("dst", "") == f.dst.str() && proto &&
         *proto == f.l4proto &&
         (!row.contains("dport") || (f.dport && row["dport"].get<int>() == *f.dport));
}

class LoadedFixture final : public LoadedDataplane {
 public:
  LoadedFixture(std::string name, json table, std::string description)
      : name_(std::move(name)), table_(std::move(table)), description_(std::move(description)) {}
  const std::string& description() const override { return description_; }
  const std::optional<NodeInfo>& node() const override { return node_; }
  void set_node(NodeInfo node) override { node_ = std::move(node); }

  Detection detect() const override {
    Detection d;
    d.dataplane = name_;
    d.found = table_.value("calico", false);
    d.kind = d.found ? name_ : "none";
    if (d.found) d.layouts.push_back(fmt::format("{} table", name_));
    d.version_hint = table_.value("version", "");
    d.clues.push_back(
        fmt::format("{} flows in the table", table_.value("flows", json::array()).size()));
    d.dataplanes = {{name_, d.found}};
    d.text_lines.emplace_back("flows", std::to_string(table_.value("flows", json::array()).size()));
    return d;
  }

  Result<Report> inspect(const Flow& flow) const override {
    Report r;
    r.flow = flow;
    r.dataplane.kind = name_;
    r.dataplane.source = description_;
    const json flows = table_.value("flows", json::array());
    for (std::size_t i = 0; i < flows.size(); ++i) {
      const json& row = flows[i];
      if (!same_flow(row, flow)) continue;
      if (row.contains("error")) {
        auto code = error_code(row["error"].get<std::string>());
        if (!code) return code.error();
        return make_error(*code, fmt::format("{}: {}", name_, row.value("why", "failed")));
      }
      RuleRef rule(name_, name_, row.value("rule", ""), i, row.value("rule", ""), "", std::nullopt,
                   std::nullopt);
      const std::string verdict = row.value("verdict", "");
      if (verdict == "allow" || verdict == "deny") {
        r.verdict = verdict == "allow" ? Verdict::allow : Verdict::deny;
        r.decided_by.kind = DecisionKind::policy_rule;
        r.decided_by.tier = row.value("tier", "");
        r.decided_by.action = verdict;
        r.decided_by.summary =
            fmt::format("{} by {} in the {} table", verdict, row.value("rule", "?"), name_);
        r.decided_by.rule = rule;
        return r;
      }
      if (verdict != "indeterminate")
        return make_error(
            ErrorCode::bad_input,
            fmt::format("{} table: flows[{}]: unknown verdict \"{}\"", name_, i, verdict));
      r.indeterminate_reason = IndeterminateReason{rule, "", row.value("why", "")};
      return r;
    }
    r.verdict = Verdict::indeterminate;
    r.indeterminate_reason = IndeterminateReason{
        RuleRef{}, "", fmt::format("the {} table has no row for this flow", name_)};
    return r;
  }

 private:
  std::string name_;
  json table_;
  std::string description_;
  std::optional<NodeInfo> node_;
};

}  // namespace

std::vector<SourceOption> FixtureDataplane::source_options() const {
  return {{dir_option(), "DIR", "Test fixture: the directory of the live node's table.json", ""}};
}

bool FixtureDataplane::claims(const SourceRequest& req) const {
  return req.has(dir_option());
}

Status FixtureDataplane::check(const SourceRequest& req) const {
  if (!req.file.empty() && claims(req))
    return make_error(
        ErrorCode::bad_input,
        fmt::format("--{} reads a live node; --ruleset a snapshot: give one", dir_option()));
  return Ok{};
}

Result<json> FixtureDataplane::read_live_table(const SourceRequest& req) const {
  const std::string& dir = req.option(dir_option());
  if (dir.empty())
    return make_error(ErrorCode::not_found,
                      fmt::format("no {} node here (--{} DIR)", name_, dir_option()));
  auto text = read_input_file(dir + "/table.json", req.max_bytes);
  if (!text) return text.error();
  json table = json::parse(*text, nullptr, false);
  if (!table.is_object())
    return make_error(ErrorCode::bad_input, fmt::format("{}/table.json: not a JSON object", dir));
  return table;
}

Result<std::unique_ptr<LoadedDataplane>> FixtureDataplane::load(const SourceRequest& req) const {
  if (!req.file.empty()) {
    auto text = read_input_file(req.file, req.max_bytes);
    if (!text) return text.error();
    const std::string origin = input_origin(req.file);
    json doc = json::parse(*text, nullptr, false);
    if (!is_snapshot(doc))
      return make_error(ErrorCode::not_found, fmt::format("{}: not a snapshot", origin));
    auto section = snapshot_section(doc, name_, V1Section::member, origin);
    if (!section) return section.error();
    auto loaded = std::make_unique<LoadedFixture>(name_, **section, "snapshot " + origin);
    loaded->set_snapshot_k8s(take_snapshot_k8s(doc));
    return std::unique_ptr<LoadedDataplane>(std::move(loaded));
  }
  auto table = read_live_table(req);
  if (!table) return table.error();
  return std::unique_ptr<LoadedDataplane>(std::make_unique<LoadedFixture>(
      name_, std::move(*table), "live " + req.option(dir_option())));
}

Result<std::optional<json>> FixtureDataplane::snapshot(const SourceRequest& req) const {
  auto table = read_live_table(req);
  if (!table) {
    if (table.error().code == ErrorCode::not_found && !claims(req)) return std::optional<json>();
    return table.error();
  }
  return std::optional<json>(std::move(*table));
}

std::string FixtureDataplane::describe_snapshot(const json& section) const {
  auto flows = section.find("flows");
  return fmt::format("{} flows", flows == section.end() ? 0 : flows->size());
}

}  // namespace dpi::fixture
