// Internal pieces of the iptables-save parser: tokenizer (tokenizer.cpp), matches
// (matches.cpp), targets (targets.cpp); tables.cpp assembles tables, chains and rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/nftables/model.h"
#include "backends/nftables/xt/decode.h"
#include "core/result.h"

namespace dpi::nft::ipt {

struct Token {
  std::string s;
  bool quoted = false;  // a quoted "!" is text, not a negation
  bool is(std::string_view v) const { return !quoted && s == v; }
};

// Splits one line as iptables-restore does: blanks separate words, "..." quotes (backslash
// escapes a quote or backslash inside) may make up all or part of a word. nullopt + *why on an
// unterminated quote.
std::optional<std::vector<Token>> tokenize(std::string_view line, std::string* why);

// An option with its arguments as written, e.g. "--dport" ["80"], negated by a leading "!".
struct Opt {
  std::string name;  // canonical long name
  bool invert = false;
  std::vector<std::string> args;
};

// One "-m NAME ..." (or implicit protocol match, or the target) with its options.
struct Module {
  std::string name;
  std::vector<Opt> opts;
  std::string text;  // as written, for UnknownStmt
  const Opt* find(std::string_view n) const {
    for (const auto& o : opts)
      if (o.name == n) return &o;
    return nullptr;
  }
};

// An option of a known match or target: its canonical name (aliases map to it) and argument
// count. match_option/target_option: nullopt when the match/target or the option is unknown.
struct OptSpec {
  std::string canonical;
  int nargs = 0;
};
bool match_known(std::string_view module);
std::optional<OptSpec> match_option(std::string_view module, std::string_view opt);
bool target_known(std::string_view target);
std::optional<OptSpec> target_option(std::string_view target, std::string_view opt);

struct RuleCtx {
  XtContext& xt;
  bool v6 = false;
  std::optional<uint8_t> proto;  // -p without "!", for the implicit port match
  std::string where;             // "file:line"
};

// A bad_input error at the rule's file:line.
Error bad(const RuleCtx& ctx, const std::string& what);
// Moves a decoded xt match or target's statements to the end of out.
void append(std::vector<Stmt>& out, XtDecoded&& d);

// Appends the match's statements to out (an UnknownStmt for what is not modelled); *comment gets
// the text of a comment match. Errors (bad_input) for malformed values.
Status compile_match(const Module& m, RuleCtx& ctx, std::vector<Stmt>& out, std::string* comment);
// The target's statements; jumps and gotos are left to the caller.
Status compile_target(const Module& t, RuleCtx& ctx, std::vector<Stmt>& out);

// Shared value parsers; nullopt + *why when malformed.
std::optional<uint32_t> parse_u32(std::string_view s, std::string* why);
std::optional<std::pair<uint32_t, uint32_t>> parse_value_mask(std::string_view s, std::string* why);
std::optional<Range> parse_addr(std::string_view s, bool v6, std::string* why);
std::optional<Range> parse_iface(std::string_view s, std::string* why);
std::optional<uint8_t> parse_proto(std::string_view s, std::string* why);

}  // namespace dpi::nft::ipt
