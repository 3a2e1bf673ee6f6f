#include "core/calico/nflog_prefix.h"

#include <cctype>

namespace dpi::calico {

std::optional<NflogPrefix> parse_nflog_prefix(std::string_view s) {
  if (s.size() < 3) return std::nullopt;
  NflogPrefix p;
  switch (s[0]) {
    case 'A': p.action = "allow"; break;
    case 'D': p.action = "deny"; break;
    case 'P': p.action = "pass"; break;
    default: return std::nullopt;
  }
  switch (s[1]) {
    case 'P': p.owner = "policy"; break;
    case 'R': p.owner = "profile"; break;
    default: return std::nullopt;
  }
  switch (s[2]) {
    case 'I': p.direction = "ingress"; break;
    case 'E': p.direction = "egress"; break;
    default: return std::nullopt;
  }
  std::size_t i = 3;
  int idx = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    idx = idx * 10 + (s[i] - '0');
    if (idx > 1'000'000) return std::nullopt;
    digits = true;
    ++i;
  }
  if (digits) p.rule_index = idx;
  if (i == s.size()) {
    // "DRI"/"DRE": no profile matched. Anything else needs an id after '|'.
    if (p.owner == "profile" && !digits) return p;
    return std::nullopt;
  }
  if (s[i] != '|') return std::nullopt;
  p.id = std::string(s.substr(i + 1));
  p.hashed = s.size() == 63 && s[10] == '_' && s[52] == '_';
  return p;
}

}  // namespace dpi::calico
