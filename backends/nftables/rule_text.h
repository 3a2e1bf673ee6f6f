// Renders rule statements from nft's JSON back to nft's own syntax, for reports.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dpi::nft {

std::string expr_text(const nlohmann::json& e);
std::string stmt_text(const nlohmann::json& stmt);
std::string rule_text(const nlohmann::json& exprs);

}  // namespace dpi::nft
