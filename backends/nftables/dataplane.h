// The nftables backend behind the dataplane interface (core/dataplane.h): native nft and
// iptables-nft rulesets, live, from `nft -j` output, iptables-save text or a snapshot.
#pragma once

#include "core/dataplane.h"

namespace dpi::nft {

class NftablesDataplane final : public DataplaneBackend {
 public:
  std::string_view name() const override { return "nftables"; }
  std::string_view summary() const override { return "native nft and iptables-nft"; }
  Layer layer() const override { return Layer::netfilter; }
  std::vector<SourceOption> source_options() const override;
  bool claims(const SourceRequest& req) const override;
  Status check(const SourceRequest& req) const override;
  Result<std::unique_ptr<LoadedDataplane>> load(const SourceRequest& req) const override;
  Result<std::optional<nlohmann::json>> snapshot(const SourceRequest& req) const override;
  bool traces() const override { return true; }
  Result<KernelPath> trace(const SourceRequest& req, const TraceRequest& t) const override;
  std::vector<std::string> watch_sources() const override { return {"nflog", "kfree_skb"}; }
  Result<std::vector<std::unique_ptr<WatchSource>>> watch(const SourceRequest& req,
                                                          const WatchRequest& w) const override;
  std::string describe_snapshot(const nlohmann::json& section) const override;
};

}  // namespace dpi::nft
