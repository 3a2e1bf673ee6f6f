// dpl-ebpf-attach: loads the lab's Calico-like tc program (bpf/calico_tc.bpf.c) over the maps that
// tests/lab/ebpf/node.py pinned for one Calico version, installs its "allowed" and "drop" programs
// in the static programs map(s) and attaches the main programs to tc ingress and egress (clsact,
// direct-action) of each interface. Runs in the caller's network and mount namespaces: the lab
// calls it inside the node netns and the lab's private bpffs. The tc filters keep the programs
// alive after it exits; nothing is pinned.
//
//   dpl-ebpf-attach --globals <bpffs>/tc/globals --version 3.30|3.32 [--host-ip NODE_IP] --iface
//   caliX... [--hep eth0...]
//
// --host-ip: the node's address, the source a pod's connection to itself through a service is
// masqueraded to (kube-proxy's hairpin masquerade; Calico marks such packets for it).
// --hep: a host endpoint (the uplink): calico_from_hep / calico_to_hep on its tc ingress / egress.
// Prints one JSON object (program ids, attached interfaces); exit 1 with one line on stderr
// otherwise.

#include <cstdio>
#include <string>

#include "error.h"
#include "options.h"
#include "tc_node.h"

int main(int argc, char** argv) {
  try {
    const dpl::Options o = dpl::parse_options(argc, argv);
    const dpl::Attached a = dpl::load_and_attach(o);
    std::string ifaces;
    for (const auto& i : o.ifaces) ifaces += (ifaces.empty() ? "\"" : ", \"") + i + "\"";
    std::string heps;
    for (const auto& i : o.heps) heps += (heps.empty() ? "\"" : ", \"") + i + "\"";
    std::printf(
        "{\"version\": \"%s\", \"progs\": {\"from_wep\": %u, \"to_wep\": %u, \"allowed\": [%u, "
        "%u], "
        "\"drop\": [%u, %u]}, \"static_index\": {\"allowed\": [%u, %u], \"drop\": [%u, %u]}, "
        "\"ifaces\": [%s], \"heps\": [%s], \"hep_progs\": {\"from_hep\": %u, \"to_hep\": %u}}\n",
        std::string(o.maps->version).c_str(), a.from_wep, a.to_wep, a.allowed[0], a.allowed[1],
        a.drop[0], a.drop[1], o.maps->allowed[0], o.maps->allowed[1], o.maps->drop[0],
        o.maps->drop[1], ifaces.c_str(), heps.c_str(), a.from_hep, a.to_hep);
    return 0;
  } catch (const dpl::AttachError& e) {
    std::fprintf(stderr, "dpl-ebpf-attach: %s\n", e.what.c_str());
    return 1;
  }
}
