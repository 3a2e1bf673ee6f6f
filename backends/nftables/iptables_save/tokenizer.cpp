// Word splitting of one iptables-save line, as iptables-restore's tokenizer does it.
#include "backends/nftables/iptables_save/internal.h"

namespace dpi::nft::ipt {

std::optional<std::vector<Token>> tokenize(std::string_view line, std::string* why) {
  std::vector<Token> out;
  Token cur;
  bool in_word = false, in_quote = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_quote) {
      if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
        cur.s += line[++i];
      } else if (c == '"') {
        in_quote = false;
      } else {
        cur.s += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur = Token{};
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '"') {
      in_quote = true;
      cur.quoted = true;
    } else {
      cur.s += c;
    }
  }
  if (in_quote) {
    *why = "unterminated quote (a '\"' without its closing '\"')";
    return std::nullopt;
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

}  // namespace dpi::nft::ipt
