#include "cli/source_options.h"

namespace dpi::cli {

void SourceOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--dataplane", dataplane,
                 "Which dataplane to read: auto (whatever is there), nftables (native nft and "
                 "iptables-nft), ebpf (not yet supported)")
      ->check(CLI::IsMember({"auto", "nftables", "ebpf"}))
      ->capture_default_str();
  cmd.add_option("--ruleset", spec.ruleset_file,
                 "Read the output of `nft -j list ruleset` from FILE (- for stdin) instead of the "
                 "live kernel; no root needed")
      ->type_name("FILE");
  cmd.add_option(
         "--iptables-save", spec.iptables_save_file,
         "Read `iptables-save` (or ip6tables-save, iptables-restore input) text from FILE (- for "
         "stdin) instead of the live kernel, for nodes where only text was captured; rule handles "
         "are line numbers in FILE")
      ->type_name("FILE");
  cmd.add_option(
         "--ipset-save", spec.ipset_save_file,
         "With --iptables-save: the node's ipsets as `ipset save` text, for its -m set matches")
      ->type_name("FILE");
  cmd.add_option("--node", spec.node_file,
                 "With --ruleset or --iptables-save: the node's interfaces, addresses and routes "
                 "as JSON (see "
                 "docs/inspect.md), so the flow's path is derived as on the node")
      ->type_name("FILE");
  cmd.add_option("--netns", spec.netns,
                 "Read the dataplane of this network namespace (name under /run/netns or a path "
                 "such as /proc/PID/ns/net)")
      ->type_name("NAME|PATH");
  cmd.add_option("--max-input-mb", max_input_mb,
                 "Refuse any input (file, stdin, pipe) larger than this many MiB")
      ->check(CLI::Range(std::size_t{1}, kMaxInputMbLimit))
      ->capture_default_str();
}

Result<nft::SourceSpec> SourceOptions::resolved() const {
  if (dataplane == "ebpf")
    return make_error(ErrorCode::bad_input,
                      "--dataplane ebpf is not supported yet; use nftables or auto");
  if (!spec.node_file.empty() && spec.ruleset_file.empty() && spec.iptables_save_file.empty())
    return make_error(
        ErrorCode::bad_input,
        "--node applies only with --ruleset or --iptables-save: a live read takes the "
        "node's routes from the kernel");
  if (!spec.iptables_save_file.empty() && !spec.ruleset_file.empty())
    return make_error(ErrorCode::bad_input,
                      "--iptables-save and --ruleset are two rulesets: give one");
  if (!spec.ipset_save_file.empty() && spec.iptables_save_file.empty())
    return make_error(
        ErrorCode::bad_input,
        "--ipset-save applies only with --iptables-save (live reads and snapshots carry the "
        "ipsets)");
  if (spec.iptables_save_file == "-" && spec.ipset_save_file == "-")
    return make_error(ErrorCode::bad_input,
                      "--iptables-save and --ipset-save cannot both read stdin");
  nft::SourceSpec s = spec;
  s.load.max_bytes = max_input_mb << 20;
  return s;
}

}  // namespace dpi::cli
