// Fuzz target: a snapshot file (`dpinspect snapshot` output given to --ruleset): JSON text,
// read_snapshot (its nftables section, or a version 1 document's top level: the xt payloads,
// ipsets and node it carries), then the nft JSON loader with those payloads, so that the xt
// decoders run on what the snapshot holds, then what the CLI does with the ruleset (pipeline.h).
// Invariants: no crash, no sanitizer report, no exception escapes, and errors start with the
// file's name.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <nlohmann/json.hpp>

#include "backends/nftables/json_loader.h"
#include "backends/nftables/snapshot.h"
#include "fuzz_check.h"
#include "fuzz_target.h"
#include "pipeline.h"

DPI_FUZZ_INIT(load_snapshot) {
  dpi::fuzz::pipeline();
}

DPI_FUZZ_ONE_INPUT(load_snapshot) {
  constexpr const char* kOrigin = "node.snapshot.json";
  auto doc = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !dpi::nft::is_snapshot(doc)) return 0;
  auto snap = dpi::nft::read_snapshot(doc, kOrigin);
  if (!snap) {
    FUZZ_CHECK(snap.error().message.rfind(kOrigin, 0) == 0,
               "snapshot error does not name the file: " + snap.error().message);
    return 0;
  }
  dpi::nft::Loaded src;
  src.xt = std::make_shared<dpi::nft::XtPayloads>(std::move(snap->xt));
  src.ipsets = std::make_shared<dpi::nft::IpsetCatalog>(std::move(snap->ipsets));
  src.node = std::move(snap->node);
  dpi::nft::LoadOptions opts;
  opts.xt = src.xt.get();
  opts.ipsets = src.ipsets.get();
  auto rs = dpi::nft::load_ruleset_doc(*snap->ruleset, kOrigin, opts);
  if (!rs) {
    FUZZ_CHECK(rs.error().message.rfind(kOrigin, 0) == 0,
               "load error does not name the file: " + rs.error().message);
    return 0;
  }
  src.ruleset = std::move(*rs);
  dpi::fuzz::exercise(src);
  return 0;
}
