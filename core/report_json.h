// The report as JSON, schema "dpinspect.report/v1" (docs/report-schema.md).
#pragma once

#include <nlohmann/json.hpp>

#include "core/report.h"

namespace dpi {

nlohmann::json to_json(const Report& r);
nlohmann::json to_json(const RuleRef& r);

}  // namespace dpi
