// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The lab's stand-in for Calico's calico_tc_main and its "allowed" / "drop"
 * programs (felix/bpf-gpl/tc.c), attached at tc ingress (from the workload:
 * its egress policy) and tc egress (to the workload: its ingress policy) of
 * every cali* interface of a lab node.
 *
 * It works on the maps Felix pins (created by tests/lab/ebpf/node.py, reused
 * by dpl-ebpf-attach) so that the policy programs, which only read the
 * per-CPU state, run exactly as on a Calico node. Written from the layouts in
 * calico-ebpf.md; no Calico code. What it leaves out is listed in
 * tests/lab/README.md ("eBPF node").
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define HOOK_INGRESS 0 /* counters key hook: from the workload */
#define HOOK_EGRESS 1 /* to the workload */

/* enum calico_reason indices used here (same in every version). */
#define REASON_TOTAL 0
#define REASON_ACCEPTED_BY_POLICY 2
#define REASON_DROPPED_BY_POLICY 4

#define ROUTE_LOCAL 0x8
#define ROUTE_HOST 0x10

#define IFS_HEP 0x8

#define STATE_DEST_IS_HOST 0x4
#define STATE_SRC_IS_HOST 0x8

#define CT_NORMAL 0
#define CT_NAT_FWD 1
#define CT_NAT_REV 2

#define LEG_SYN_SEEN 0x1
#define LEG_APPROVED 0x10
#define LEG_OPENER 0x20
#define LEG_WORKLOAD 0x40

/* CALI_CT_FLAG_SVC_SELF (0x400) lives in flags2, the value's bits 8-15. */
#define CT_FLAG2_SVC_SELF 0x04

#define MAX_RULE_IDS 32

/*
 * Slot 0 of cali_state4 (v3.30, 488 bytes) / cali_state6 (v3.32, 512 bytes):
 * only the fields both layouts put at the same offsets.
 */
struct lab_state {
	__u32 eventhdr[2];
	__be32 ip_src; /* 8 */
	__u32 ip_src_rest[3];
	__be32 ip_dst; /* 24 */
	__u32 ip_dst_rest[3];
	__be32 pre_nat_ip_dst; /* 40 */
	__u32 pre_nat_rest[3];
	__be32 post_nat_ip_dst; /* 56 */
	__u32 post_nat_rest[3];
	__u8 tun_ip[16]; /* 72 */
	__u16 ihl; /* 88 */
	__u16 unused;
	__s32 pol_rc; /* 92 */
	__u16 sport; /* 96 */
	union {
		__u16 dport; /* 98 */
		struct {
			__u8 icmp_type;
			__u8 icmp_code;
		};
	};
	__u16 pre_nat_dport; /* 100 */
	__u16 post_nat_dport; /* 102 */
	__u8 ip_proto; /* 104 */
	__u8 pad;
	__be16 ip_size; /* 106 */
	__u32 rules_hit; /* 108 */
	__u64 rule_ids[MAX_RULE_IDS]; /* 112 */
	__u64 flags; /* 368 */
	__u8 rest[112]; /* up to 488, the v3.30 size */
};

_Static_assert(__builtin_offsetof(struct lab_state, pol_rc) == 92, "pol_rc");
_Static_assert(__builtin_offsetof(struct lab_state, ip_proto) == 104, "proto");
_Static_assert(__builtin_offsetof(struct lab_state, rule_ids) == 112, "ids");
_Static_assert(__builtin_offsetof(struct lab_state, flags) == 368, "flags");
_Static_assert(sizeof(struct lab_state) == 488, "state size");

struct ct_key {
	__u32 protocol;
	__be32 addr_a;
	__be32 addr_b;
	__u16 port_a;
	__u16 port_b;
};

struct ct_leg {
	__u64 bytes;
	__u32 packets;
	__u32 seqno;
	__u32 bits; /* syn 0x1, ack 0x2, fin 0x4, rst 0x8, approved 0x10, ... */
	__u32 ifindex;
};

struct ct_value {
	__u64 rst_seen;
	__u64 last_seen;
	__u8 type;
	__u8 flags;
	__u8 flags3;
	__u8 flags4;
	__u8 pad0[3];
	__u8 flags2;
	union {
		struct {
			struct ct_leg a_to_b; /* 24 */
			struct ct_leg b_to_a; /* 48 */
			__be32 tun_ip; /* 72 */
			__be32 orig_ip; /* 76 */
			__u16 orig_port; /* 80 */
			__u16 orig_sport; /* 82 */
			__be32 orig_sip; /* 84 */
		};
		struct {
			struct ct_key nat_rev_key; /* 24 */
			__u16 nat_sport; /* 40 */
			__u8 pad2[46];
		};
	};
};

_Static_assert(sizeof(struct ct_value) == 88, "ct value size");

struct nat_fe_key {
	__u32 prefixlen;
	__be32 addr;
	__u16 port;
	__u8 protocol;
	__be32 saddr;
	__u8 pad;
} __attribute__((packed));

struct nat_fe_value {
	__u32 id;
	__u32 count;
	__u32 local;
	__u32 affinity_timeo;
	__u32 flags;
};

struct nat_be_key {
	__u32 id;
	__u32 ordinal;
};

struct nat_dest {
	__be32 addr;
	__u16 port;
	__u8 pad[2];
};

/* Full key length in bits: address, port, protocol and source address. */
#define NAT_FE_PREFIXLEN ((4 + 2 + 1 + 4) * 8)
#define NAT_FE_DROP_COUNT 0xffffffff

struct route_key {
	__u32 prefixlen;
	__be32 addr;
};

struct route_value {
	__u32 flags;
	__u32 next_hop;
};

struct ifstate_value {
	__u32 flags;
	char name[16];
	__s32 xdp_policy_v4;
	__s32 ingress_policy_v4;
	__s32 egress_policy_v4;
	__s32 xdp_policy_v6;
	__s32 ingress_policy_v6;
	__s32 egress_policy_v6;
	__s32 rest[2];
};

/* IPv6 twins (cali_v6_routes, cali_v6_ct3/ct4): 16-byte addresses. */
struct route6_key {
	__u32 prefixlen;
	__be32 addr[4];
};

struct route6_value {
	__u32 flags;
	__u32 next_hop[4];
};

struct ct6_key {
	__u32 protocol;
	__be32 addr_a[4];
	__be32 addr_b[4];
	__u16 port_a;
	__u16 port_b;
};

/* Same head and legs as the v4 value; the v6 tail (tun_ip, orig_* as
 * 16-byte addresses) is not used by the lab: it has no IPv6 NAT. */
struct ct6_value {
	__u64 rst_seen;
	__u64 last_seen;
	__u8 type;
	__u8 flags;
	__u8 flags3;
	__u8 flags4;
	__u8 pad0[3];
	__u8 flags2;
	struct ct_leg a_to_b; /* 24 */
	struct ct_leg b_to_a; /* 48 */
	__u8 tail[56]; /* 72 */
};

_Static_assert(sizeof(struct ct6_key) == 40, "ct6 key size");
_Static_assert(sizeof(struct ct6_value) == 128, "ct6 value size");

struct counters_key {
	__u32 ifindex;
	__u32 hook;
};

/*
 * Map definitions: one layout for every version. dpl-ebpf-attach replaces
 * each with the pinned map of the chosen version before loading, so the
 * kernel checks every access against the real sizes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct lab_state);
} state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct ifstate_value);
} iface SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct route_key);
	__type(value, struct route_value);
} routes SEC(".maps");

/* cali_v4_fsafes2: Felix's failsafe ports, an LPM trie keyed by port,
 * protocol, direction and the remote address (calico-ebpf.md). */
struct fsafe_key {
	__u32 prefixlen;
	__u16 port;
	__u8 proto;
	__u8 flags; /* 1: outbound */
	__be32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fsafe_key);
	__type(value, __u32);
} fsafes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
} ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct route6_key);
	__type(value, struct route6_value);
} routes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ct6_key);
	__type(value, struct ct6_value);
} ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct nat_fe_key);
	__type(value, struct nat_fe_value);
} nat_fe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct nat_be_key);
	__type(value, struct nat_dest);
} nat_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct counters_key);
	__type(value, __u64[26]);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} rule_ctrs SEC(".maps");

/* Static programs (allowed / drop) and policy jump maps, per hook. v3.30 has
 * one of each for both hooks: the loader gives both definitions the same map. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 400);
	__type(key, __u32);
	__type(value, __u32);
} progs_ing SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 400);
	__type(key, __u32);
	__type(value, __u32);
} progs_egr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 240000);
	__type(key, __u32);
	__type(value, __u32);
} jump_ing SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 240000);
	__type(key, __u32);
	__type(value, __u32);
} jump_egr SEC(".maps");

/* Indices of the allowed / drop programs in the static map of each hook
 * (set by the loader: they differ when both hooks share one map). */
const volatile __u32 idx_allowed[2] = { 2, 2 };
const volatile __u32 idx_drop[2] = { 4, 4 };
/* The node's IP: a pod reaching itself through a service is masqueraded to it
 * (kube-proxy's hairpin masquerade; Calico marks such packets for it). */
const volatile __be32 host_ip = 0;

/* ------------------------------------------------------------------------ */
/* Small helpers */

static __always_inline int bump_counter(__u32 ifindex, __u32 hook, __u32 reason)
{
	struct counters_key key = { .ifindex = ifindex, .hook = hook };
	__u64 *ctrs = bpf_map_lookup_elem(&counters, &key);

	if (!ctrs)
		return -1;
	ctrs[reason]++;
	return 0;
}

static __always_inline void bump_rule_counters(struct lab_state *st)
{
	for (int i = 0; i < MAX_RULE_IDS; i++) {
		__u64 one = 1, id;
		__u64 *ctr;

		if (i >= st->rules_hit)
			break;
		id = st->rule_ids[i];
		ctr = bpf_map_lookup_elem(&rule_ctrs, &id);
		if (ctr)
			(*ctr)++;
		else
			bpf_map_update_elem(&rule_ctrs, &id, &one, BPF_NOEXIST);
	}
}

static __always_inline struct lab_state *get_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&state, &zero);
}

static __always_inline bool route_is_local_host(__be32 addr)
{
	struct route_key key = { .prefixlen = 32, .addr = addr };
	struct route_value *rt = bpf_map_lookup_elem(&routes, &key);

	return rt && (rt->flags & (ROUTE_LOCAL | ROUTE_HOST)) ==
			     (ROUTE_LOCAL | ROUTE_HOST);
}

/* Calico orders a v4 conntrack key by the raw big-endian words compared as
 * native integers, ties broken by port; A is the smaller side. */
static __always_inline bool src_is_a(__be32 src, __be32 dst, __u16 sport,
				     __u16 dport)
{
	return src < dst || (src == dst && sport < dport);
}

static __always_inline void fill_ct_key(struct ct_key *k, __u8 proto,
					__be32 src, __be32 dst, __u16 sport,
					__u16 dport)
{
	k->protocol = proto;
	if (src_is_a(src, dst, sport, dport)) {
		k->addr_a = src;
		k->addr_b = dst;
		k->port_a = sport;
		k->port_b = dport;
	} else {
		k->addr_a = dst;
		k->addr_b = src;
		k->port_a = dport;
		k->port_b = sport;
	}
}

/* The leg carrying packets src -> dst. */
static __always_inline struct ct_leg *
leg_from(struct ct_value *v, __be32 src, __be32 dst, __u16 sport, __u16 dport)
{
	return src_is_a(src, dst, sport, dport) ? &v->a_to_b : &v->b_to_a;
}

/* ------------------------------------------------------------------------ */
/* Packet access */

struct pkt {
	__u32 l3; /* offset of the IP header */
	__u32 l4; /* offset of the L4 header */
	__u8 proto;
	__u8 tcp_flags;
	__be32 saddr, daddr;
	__u16 sport, dport; /* host order; ICMP: 0, type/code in icmp_* */
	__u8 icmp_type, icmp_code;
	__u16 ip_len;
};

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define IP_CSUM_OFF 10
#define IP_DST_OFF 16
#define IP_SRC_OFF 12

/* 1 = IPv4 TCP/UDP/ICMP parsed, 0 = anything else (passed untouched). */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u8 *l4;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return 0;
	p->l3 = sizeof(*eth);
	p->l4 = p->l3 + ip->ihl * 4;
	p->proto = ip->protocol;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->ip_len = bpf_ntohs(ip->tot_len);
	l4 = data + p->l4;
	switch (p->proto) {
	case IPPROTO_TCP:
		if ((void *)(l4 + 20) > data_end)
			return 0;
		p->sport = bpf_ntohs(*(__be16 *)l4);
		p->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		p->tcp_flags = l4[13];
		return 1;
	case IPPROTO_UDP:
		if ((void *)(l4 + 8) > data_end)
			return 0;
		p->sport = bpf_ntohs(*(__be16 *)l4);
		p->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		return 1;
	case IPPROTO_ICMP:
		if ((void *)(l4 + 8) > data_end)
			return 0;
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		return 1;
	}
	return 0;
}

static __always_inline __u32 l4_csum_off(const struct pkt *p)
{
	return p->l4 + (p->proto == IPPROTO_TCP ? 16 : 6);
}

/* Rewrite one address (dst or src) and its port, fixing both checksums. */
static __always_inline int rewrite(struct __sk_buff *skb, const struct pkt *p,
				   bool dst, __be32 old_ip, __be32 new_ip,
				   __u16 old_port, __u16 new_port)
{
	__u32 csum_off = l4_csum_off(p);
	__u64 l4flags = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be16 oport = bpf_htons(old_port), nport = bpf_htons(new_port);

	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return -1;
	if (old_ip != new_ip) {
		if (bpf_l4_csum_replace(skb, csum_off, old_ip, new_ip,
					l4flags | BPF_F_PSEUDO_HDR | 4) ||
		    bpf_l3_csum_replace(skb, p->l3 + IP_CSUM_OFF, old_ip,
					new_ip, 4) ||
		    bpf_skb_store_bytes(skb,
					p->l3 + (dst ? IP_DST_OFF : IP_SRC_OFF),
					&new_ip, 4, 0))
			return -1;
	}
	if (oport != nport) {
		if (bpf_l4_csum_replace(skb, csum_off, oport, nport,
					l4flags | 2) ||
		    bpf_skb_store_bytes(skb, p->l4 + (dst ? 2 : 0), &nport, 2,
					0))
			return -1;
	}
	return 0;
}

/* ICMP errors (unreachable, time exceeded, parameter problem) about a packet
 * of a tracked connection are related: they pass without policy. */
static __always_inline bool icmp_error_related(struct __sk_buff *skb,
					       const struct pkt *p)
{
	struct iphdr inner;
	__be16 ports[2];
	struct ct_key k = {};
	__u32 off = p->l4 + 8;

	if (p->proto != IPPROTO_ICMP ||
	    (p->icmp_type != 3 && p->icmp_type != 11 && p->icmp_type != 12))
		return false;
	if (bpf_skb_load_bytes(skb, off, &inner, sizeof(inner)) ||
	    inner.ihl < 5)
		return false;
	if (bpf_skb_load_bytes(skb, off + inner.ihl * 4, ports, sizeof(ports)))
		return false;
	if (inner.protocol == IPPROTO_ICMP)
		ports[0] = ports[1] = 0;
	fill_ct_key(&k, inner.protocol, inner.saddr, inner.daddr,
		    bpf_ntohs(ports[0]), bpf_ntohs(ports[1]));
	return bpf_map_lookup_elem(&ct, &k) != NULL;
}

/* ------------------------------------------------------------------------ */
/* calico_tc_main */

/* A pod's packet to itself (through a service) arriving back at the pod:
 * masqueraded to the node's IP after policy, as kube-proxy / Calico do in
 * POSTROUTING, so that the pod accepts it and answers through the node. The
 * policy still sees the pod as the source. */
static __always_inline bool hairpin(const struct pkt *p, int hook)
{
	return hook == HOOK_EGRESS && host_ip && p->saddr == p->daddr &&
	       (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP);
}

/* What conntrack says about the packet: the entry that holds the legs (the
 * NAT_REV entry of a NATed flow) and the translations to apply. */
struct ct_res {
	struct ct_value *v; /* NULL: no entry */
	bool dnat; /* forward packet of a NATed flow: dst -> backend */
	bool snat; /* reply of a NATed flow: src -> service */
	bool self; /* service to self: the reply's dst goes back to the pod */
	bool masq; /* service to self, towards the pod: src -> host_ip */
	__be32 nat_ip; /* dnat: backend, snat: frontend */
	__u16 nat_port;
	__be32 self_ip; /* self, reply: the pod's own address and port */
	__u16 self_port;
	/* The packet as the legs of v see it (after any translation). */
	__be32 eff_src, eff_dst;
	__u16 eff_sport, eff_dport;
};

/* In a NAT_REV entry the opener's leg runs client -> backend. */
static __always_inline void rev_sides(const struct ct_key *k,
				      const struct ct_value *v, __be32 *client,
				      __u16 *cport, __be32 *backend,
				      __u16 *bport)
{
	bool a_opens = v->a_to_b.bits & LEG_OPENER;

	*client = a_opens ? k->addr_a : k->addr_b;
	*cport = a_opens ? k->port_a : k->port_b;
	*backend = a_opens ? k->addr_b : k->addr_a;
	*bport = a_opens ? k->port_b : k->port_a;
}

static __always_inline void ct_lookup(const struct pkt *p, struct ct_res *r)
{
	struct ct_key k = {};
	struct ct_value *v;
	__be32 client, backend;
	__u16 cport, bport;

	r->eff_src = p->saddr;
	r->eff_sport = p->sport;
	r->eff_dst = p->daddr;
	r->eff_dport = p->dport;
	fill_ct_key(&k, p->proto, p->saddr, p->daddr, p->sport, p->dport);
	v = bpf_map_lookup_elem(&ct, &k);
	if (!v)
		return;
	if (v->type == CT_NAT_FWD) {
		struct ct_key rk = v->nat_rev_key;
		struct ct_value *rev = bpf_map_lookup_elem(&ct, &rk);

		if (!rev)
			return;
		r->v = rev;
		rev_sides(&rk, rev, &client, &cport, &backend, &bport);
		r->self = rev->flags2 & CT_FLAG2_SVC_SELF;
		if (p->daddr == rev->orig_ip && p->dport == rev->orig_port) {
			r->dnat = true;
			r->nat_ip = backend;
			r->nat_port = bport;
			r->eff_src = client;
			r->eff_sport = cport;
			r->eff_dst = backend;
			r->eff_dport = bport;
		} else {
			/* A reply already translated by the first hook it
			 * crossed: the legs are those of the real tuple. */
			r->eff_src = backend;
			r->eff_sport = bport;
			r->eff_dst = client;
			r->eff_dport = cport;
		}
		return;
	}
	r->v = v;
	if (v->type == CT_NAT_REV &&
	    !(leg_from(v, p->saddr, p->daddr, p->sport, p->dport)->bits &
	      LEG_OPENER)) {
		r->snat = true;
		r->nat_ip = v->orig_ip;
		r->nat_port = v->orig_port;
		r->self = v->flags2 & CT_FLAG2_SVC_SELF;
		r->self_ip = v->orig_sip;
		r->self_port = v->orig_sport;
	}
}

/* The leg this hook's policy approves: the workload's own side. */
static __always_inline struct ct_leg *hook_leg(struct ct_value *v,
					       const struct ct_res *r, int hook)
{
	if (hook == HOOK_INGRESS)
		return leg_from(v, r->eff_src, r->eff_dst, r->eff_sport,
				r->eff_dport);
	return leg_from(v, r->eff_dst, r->eff_src, r->eff_dport, r->eff_sport);
}

static __always_inline int
apply_ct_nat(struct __sk_buff *skb, const struct pkt *p, const struct ct_res *r)
{
	if (r->dnat)
		return rewrite(skb, p, true, p->daddr, r->nat_ip, p->dport,
			       r->nat_port);
	if (r->masq)
		return rewrite(skb, p, false, p->saddr, host_ip, p->sport,
			       p->sport);
	if (r->snat) {
		if (rewrite(skb, p, false, p->saddr, r->nat_ip, p->sport,
			    r->nat_port))
			return -1;
		if (r->self)
			return rewrite(skb, p, true, p->daddr, r->self_ip,
				       p->dport, r->self_port);
	}
	return 0;
}

/* NAT frontend -> backend for a new flow; false when not a service. */
static __always_inline bool nat_lookup(const struct pkt *p, __be32 *ip,
				       __u16 *port)
{
	struct nat_fe_key fk = {
		.prefixlen = NAT_FE_PREFIXLEN,
		.addr = p->daddr,
		.port = p->dport,
		.protocol = p->proto,
		.saddr = p->saddr,
	};
	struct nat_fe_value *fe = bpf_map_lookup_elem(&nat_fe, &fk);
	struct nat_be_key bk;
	struct nat_dest *be;

	if (!fe || fe->count == 0 || fe->count == NAT_FE_DROP_COUNT)
		return false;
	bk.id = fe->id;
	bk.ordinal = bpf_get_prandom_u32() % fe->count;
	be = bpf_map_lookup_elem(&nat_be, &bk);
	if (!be)
		return false;
	*ip = be->addr;
	*port = be->port;
	return true;
}

static __always_inline void ct_set_leg(struct ct_leg *leg, __u32 bits,
				       __u32 ifindex)
{
	leg->bits |= bits;
	leg->packets++;
	if (ifindex)
		leg->ifindex = ifindex;
}

/* A new flow from a pod to a service whose backend is that pod. */
static __always_inline bool to_self(const struct lab_state *st)
{
	return host_ip && st->ip_src == st->post_nat_ip_dst &&
	       (st->pre_nat_ip_dst != st->post_nat_ip_dst ||
		st->pre_nat_dport != st->post_nat_dport);
}

/* Create or approve the conntrack entry of the flow the policy accepted. */
static __always_inline int ct_approve(struct __sk_buff *skb,
				      struct lab_state *st, const struct pkt *p,
				      int hook)
{
	bool nat = st->pre_nat_ip_dst != st->post_nat_ip_dst ||
		   st->pre_nat_dport != st->post_nat_dport;
	bool self = to_self(st);
	__be32 src = p->saddr, dst = p->daddr;
	__u16 sport = p->sport, dport = p->dport;
	__u32 mine = LEG_APPROVED | (hook == HOOK_INGRESS ? LEG_WORKLOAD : 0);
	struct ct_key k = {};
	struct ct_value *v, nv = {};
	__u64 now = bpf_ktime_get_ns();

	if (p->proto == IPPROTO_ICMP)
		sport = dport = 0;
	if (hook == HOOK_INGRESS && nat) {
		/* The tuple after translation: the entry that tracks it. */
		src = self ? host_ip : st->ip_src;
		dst = st->post_nat_ip_dst;
		dport = st->post_nat_dport;
	}
	if (hairpin(p, hook))
		src = host_ip;
	fill_ct_key(&k, p->proto, src, dst, sport, dport);
	v = bpf_map_lookup_elem(&ct, &k);
	if (v) {
		struct ct_leg *leg =
			hook == HOOK_INGRESS ?
				leg_from(v, src, dst, sport, dport) :
				leg_from(v, dst, src, dport, sport);
		leg->bits |= LEG_APPROVED;
		v->last_seen = now;
		return 0;
	}

	nv.last_seen = now;
	nv.type = nat ? CT_NAT_REV : CT_NORMAL;
	if (nat) {
		nv.orig_ip = st->pre_nat_ip_dst;
		nv.orig_port = st->pre_nat_dport;
	}
	if (self) {
		nv.flags2 |= CT_FLAG2_SVC_SELF;
		nv.orig_sip = st->ip_src;
		nv.orig_sport = sport;
	}
	/* The opener's leg runs src -> dst. From the workload, its policy
	 * approved that leg; to the workload, the workload's leg is the other
	 * one. */
	ct_set_leg(leg_from(&nv, src, dst, sport, dport),
		   LEG_OPENER | LEG_SYN_SEEN |
			   (hook == HOOK_INGRESS ? mine : 0),
		   hook == HOOK_INGRESS ? skb->ifindex : 0);
	if (hook == HOOK_EGRESS)
		ct_set_leg(leg_from(&nv, dst, src, dport, sport), mine, 0);
	if (bpf_map_update_elem(&ct, &k, &nv, BPF_ANY))
		return -1;
	if (nat) {
		struct ct_key fk = {};
		struct ct_value fv = {};

		fill_ct_key(&fk, p->proto, st->ip_src, st->pre_nat_ip_dst,
			    sport, st->pre_nat_dport);
		fv.last_seen = now;
		fv.type = CT_NAT_FWD;
		fv.flags2 = nv.flags2;
		fv.nat_rev_key = k;
		fv.nat_sport = sport;
		if (bpf_map_update_elem(&ct, &fk, &fv, BPF_ANY))
			return -1;
	}
	return 0;
}

/*
 * A host endpoint (the uplink): tc ingress runs its ingress policy, tc egress
 * its egress policy. Its inside is the host, so for conntrack its tc ingress
 * plays the part of a workload's tc egress (towards the inside) and the other
 * way round: ct_hook. The lab's host endpoints see no services (no NAT).
 */
static __always_inline bool is_failsafe(const struct pkt *p, int hook)
{
	struct fsafe_key k = {
		.prefixlen = 64,
		.port = p->dport,
		.proto = p->proto,
		.flags = hook == HOOK_EGRESS,
		.addr = hook == HOOK_INGRESS ? p->saddr : p->daddr,
	};

	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return false;
	return bpf_map_lookup_elem(&fsafes, &k) != NULL;
}

static __always_inline int tc_main(struct __sk_buff *skb, const int hook,
				   const bool hep)
{
	const int ct_hook = hep ? hook ^ 1 : hook;
	struct pkt p = {};
	struct ct_res r = {};
	struct lab_state *st;
	struct ifstate_value *ifs;
	__u32 ifindex = skb->ifindex;
	__s32 pol_idx;
	bool syn;

	/* As Calico: no counters entry for the interface, no traffic. */
	if (bump_counter(ifindex, hook, REASON_TOTAL))
		return TC_ACT_SHOT;
	if (!parse(skb, &p))
		return TC_ACT_OK;

	syn = p.proto == IPPROTO_TCP &&
	      (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	if (!hep && hairpin(&p, hook)) {
		/* Service to self on its way back into the pod: tracked as
		 * the masqueraded tuple, which the allowed path creates. */
		struct pkt masq = p;

		masq.saddr = host_ip;
		ct_lookup(&masq, &r);
		r.masq = true;
	} else {
		ct_lookup(&p, &r);
	}
	if (r.v && !syn && (hook_leg(r.v, &r, ct_hook)->bits & LEG_APPROVED)) {
		/* Established on this side: no policy. */
		r.v->last_seen = bpf_ktime_get_ns();
		return apply_ct_nat(skb, &p, &r) ? TC_ACT_SHOT : TC_ACT_OK;
	}
	if (!r.v && icmp_error_related(skb, &p))
		return TC_ACT_OK;

	st = get_state();
	if (!st)
		return TC_ACT_SHOT;
	__builtin_memset(st, 0, sizeof(*st));
	st->ip_src = p.saddr;
	st->ip_dst = p.daddr;
	st->pre_nat_ip_dst = p.daddr;
	st->post_nat_ip_dst = p.daddr;
	st->ihl = p.l4 - p.l3;
	st->ip_proto = p.proto;
	st->ip_size = bpf_htons(p.ip_len);
	if (p.proto == IPPROTO_ICMP) {
		st->icmp_type = p.icmp_type;
		st->icmp_code = p.icmp_code;
	} else {
		st->sport = p.sport;
		st->dport = p.dport;
		st->pre_nat_dport = p.dport;
		st->post_nat_dport = p.dport;
	}
	if (r.dnat) {
		st->post_nat_ip_dst = r.nat_ip;
		st->post_nat_dport = r.nat_port;
	} else if (!r.v && hook == HOOK_INGRESS && !hep) {
		__be32 ip;
		__u16 port;

		if (p.proto != IPPROTO_ICMP && nat_lookup(&p, &ip, &port)) {
			st->post_nat_ip_dst = ip;
			st->post_nat_dport = port;
		}
	}
	if (route_is_local_host(st->post_nat_ip_dst))
		st->flags |= STATE_DEST_IS_HOST;
	if (route_is_local_host(p.saddr))
		st->flags |= STATE_SRC_IS_HOST;

	/* As Calico: traffic from the host itself to a workload is always
	 * allowed, without policy; its conntrack entry lets the replies back. */
	if (!hep && hook == HOOK_EGRESS && (st->flags & STATE_SRC_IS_HOST))
		return ct_approve(skb, st, &p, hook) ? TC_ACT_SHOT : TC_ACT_OK;
	/* As Calico: failsafe ports skip host endpoint policy. */
	if (hep && is_failsafe(&p, hook))
		return ct_approve(skb, st, &p, ct_hook) ? TC_ACT_SHOT :
							  TC_ACT_OK;

	skb->cb[0] = idx_allowed[hook];
	skb->cb[1] = idx_drop[hook];

	ifs = bpf_map_lookup_elem(&iface, &ifindex);
	pol_idx = -1;
	if (ifs)
		pol_idx = hook == HOOK_INGRESS ? ifs->ingress_policy_v4 :
						 ifs->egress_policy_v4;
	if (pol_idx >= 0) {
		if (hook == HOOK_INGRESS)
			bpf_tail_call(skb, &jump_ing, pol_idx);
		else
			bpf_tail_call(skb, &jump_egr, pol_idx);
	}
	/* No policy program on a workload interface: Calico drops; a host
	 * endpoint with no policy program allows. */
	if (hep && pol_idx < 0)
		return ct_approve(skb, st, &p, ct_hook) ? TC_ACT_SHOT :
							  TC_ACT_OK;
	return TC_ACT_SHOT;
}

/* ------------------------------------------------------------------------ */
/* IPv6: calico_tc_main's v6 build, without NAT (the lab has no IPv6 services) */

struct pkt6 {
	__be32 saddr[4], daddr[4];
	__u8 proto;
	__u8 tcp_flags;
	__u16 sport, dport; /* host order; ICMPv6: 0, type/code in icmp_* */
	__u8 icmp_type, icmp_code;
	__u16 payload_len;
};

#define NEXTHDR_ICMPV6 58

/* 1 = IPv6 TCP/UDP/ICMPv6 without extension headers, 0 = anything else. */
static __always_inline int parse6(struct __sk_buff *skb, struct pkt6 *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	__u8 *l4;

	if ((void *)(eth + 1) > data_end ||
	    eth->h_proto != bpf_htons(ETH_P_IPV6))
		return 0;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return 0;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	p->proto = ip6->nexthdr;
	p->payload_len = bpf_ntohs(ip6->payload_len);
	l4 = (void *)(ip6 + 1);
	switch (p->proto) {
	case IPPROTO_TCP:
		if ((void *)(l4 + 20) > data_end)
			return 0;
		p->sport = bpf_ntohs(*(__be16 *)l4);
		p->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		p->tcp_flags = l4[13];
		return 1;
	case IPPROTO_UDP:
		if ((void *)(l4 + 8) > data_end)
			return 0;
		p->sport = bpf_ntohs(*(__be16 *)l4);
		p->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		return 1;
	case NEXTHDR_ICMPV6:
		if ((void *)(l4 + 8) > data_end)
			return 0;
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		return 1;
	}
	return 0;
}

/* Neighbour discovery (router/neighbour solicitation and advertisement,
 * redirect): link plumbing between pod and host, never policed. */
static __always_inline bool icmp6_nd(const struct pkt6 *p)
{
	return p->proto == NEXTHDR_ICMPV6 && p->icmp_type >= 133 &&
	       p->icmp_type <= 137;
}

static __always_inline bool route6_is_local_host(const __be32 *addr)
{
	struct route6_key key = { .prefixlen = 128 };
	struct route6_value *rt;

	__builtin_memcpy(key.addr, addr, 16);
	rt = bpf_map_lookup_elem(&routes6, &key);
	return rt && (rt->flags & (ROUTE_LOCAL | ROUTE_HOST)) ==
			     (ROUTE_LOCAL | ROUTE_HOST);
}

/* Calico orders a v6 key by the four words in turn (each compared as a
 * native integer), ties broken by port. */
static __always_inline bool src_is_a6(const __be32 *src, const __be32 *dst,
				      __u16 sport, __u16 dport)
{
	for (int i = 0; i < 4; i++) {
		if (src[i] != dst[i])
			return src[i] < dst[i];
	}
	return sport < dport;
}

static __always_inline void fill_ct6_key(struct ct6_key *k, __u8 proto,
					 const __be32 *src, const __be32 *dst,
					 __u16 sport, __u16 dport)
{
	bool a = src_is_a6(src, dst, sport, dport);

	k->protocol = proto;
	__builtin_memcpy(k->addr_a, a ? src : dst, 16);
	__builtin_memcpy(k->addr_b, a ? dst : src, 16);
	k->port_a = a ? sport : dport;
	k->port_b = a ? dport : sport;
}

static __always_inline struct ct_leg *leg6_from(struct ct6_value *v,
						const __be32 *src,
						const __be32 *dst, __u16 sport,
						__u16 dport)
{
	return src_is_a6(src, dst, sport, dport) ? &v->a_to_b : &v->b_to_a;
}

/* ICMPv6 errors (destination unreachable, packet too big, time exceeded,
 * parameter problem) about a packet of a tracked connection are related:
 * they pass without policy, as ICMP errors do. */
static __always_inline bool icmp6_error_related(struct __sk_buff *skb,
						const struct pkt6 *p)
{
	struct ipv6hdr inner;
	__be16 ports[2] = {};
	struct ct6_key k = {};
	__u32 off = sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + 8;

	if (p->proto != NEXTHDR_ICMPV6 || p->icmp_type < 1 || p->icmp_type > 4)
		return false;
	if (bpf_skb_load_bytes(skb, off, &inner, sizeof(inner)))
		return false;
	if (inner.nexthdr == IPPROTO_TCP || inner.nexthdr == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, off + sizeof(inner), ports,
				       sizeof(ports)))
			return false;
	}
	fill_ct6_key(&k, inner.nexthdr, (const __be32 *)&inner.saddr,
		     (const __be32 *)&inner.daddr, bpf_ntohs(ports[0]),
		     bpf_ntohs(ports[1]));
	return bpf_map_lookup_elem(&ct6, &k) != NULL;
}

/* Create or approve the entry of a v6 flow the policy (or the host rule)
 * accepted: the same legs as v4. */
static __always_inline int ct6_approve(struct __sk_buff *skb,
				       const struct pkt6 *p, int hook)
{
	__u16 sport = p->sport, dport = p->dport;
	__u32 mine = LEG_APPROVED | (hook == HOOK_INGRESS ? LEG_WORKLOAD : 0);
	struct ct6_key k = {};
	struct ct6_value *v, nv = {};
	__u64 now = bpf_ktime_get_ns();

	fill_ct6_key(&k, p->proto, p->saddr, p->daddr, sport, dport);
	v = bpf_map_lookup_elem(&ct6, &k);
	if (v) {
		struct ct_leg *leg =
			hook == HOOK_INGRESS ?
				leg6_from(v, p->saddr, p->daddr, sport, dport) :
				leg6_from(v, p->daddr, p->saddr, dport, sport);
		leg->bits |= LEG_APPROVED;
		v->last_seen = now;
		return 0;
	}
	nv.last_seen = now;
	nv.type = CT_NORMAL;
	ct_set_leg(leg6_from(&nv, p->saddr, p->daddr, sport, dport),
		   LEG_OPENER | LEG_SYN_SEEN |
			   (hook == HOOK_INGRESS ? mine : 0),
		   hook == HOOK_INGRESS ? skb->ifindex : 0);
	if (hook == HOOK_EGRESS)
		ct_set_leg(leg6_from(&nv, p->daddr, p->saddr, dport, sport),
			   mine, 0);
	return bpf_map_update_elem(&ct6, &k, &nv, BPF_ANY) ? -1 : 0;
}

static __always_inline int tc_main6(struct __sk_buff *skb, const int hook)
{
	struct pkt6 p = {};
	struct lab_state *st;
	struct ifstate_value *ifs;
	struct ct6_key k = {};
	struct ct6_value *v;
	__u32 ifindex = skb->ifindex;
	__s32 pol_idx;
	bool syn;

	if (!parse6(skb, &p) || icmp6_nd(&p))
		return TC_ACT_OK;
	syn = p.proto == IPPROTO_TCP &&
	      (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	/* ICMPv6 echo: the key has no ports, as for ICMP. */
	fill_ct6_key(&k, p.proto, p.saddr, p.daddr, p.sport, p.dport);
	v = bpf_map_lookup_elem(&ct6, &k);
	if (v && !syn) {
		struct ct_leg *leg = hook == HOOK_INGRESS ?
					     leg6_from(v, p.saddr, p.daddr,
						       p.sport, p.dport) :
					     leg6_from(v, p.daddr, p.saddr,
						       p.dport, p.sport);

		if (leg->bits & LEG_APPROVED) {
			v->last_seen = bpf_ktime_get_ns();
			return TC_ACT_OK;
		}
	}
	if (!v && icmp6_error_related(skb, &p))
		return TC_ACT_OK;

	st = get_state();
	if (!st)
		return TC_ACT_SHOT;
	__builtin_memset(st, 0, sizeof(*st));
	__builtin_memcpy(&st->ip_src, p.saddr, 16);
	__builtin_memcpy(&st->ip_dst, p.daddr, 16);
	__builtin_memcpy(&st->pre_nat_ip_dst, p.daddr, 16);
	__builtin_memcpy(&st->post_nat_ip_dst, p.daddr, 16);
	st->ihl = sizeof(struct ipv6hdr);
	st->ip_proto = p.proto;
	st->ip_size = bpf_htons(p.payload_len + sizeof(struct ipv6hdr));
	if (p.proto == NEXTHDR_ICMPV6) {
		st->icmp_type = p.icmp_type;
		st->icmp_code = p.icmp_code;
	} else {
		st->sport = p.sport;
		st->dport = p.dport;
		st->pre_nat_dport = p.dport;
		st->post_nat_dport = p.dport;
	}
	if (route6_is_local_host(p.daddr))
		st->flags |= STATE_DEST_IS_HOST;
	if (route6_is_local_host(p.saddr))
		st->flags |= STATE_SRC_IS_HOST;
	if (hook == HOOK_EGRESS && (st->flags & STATE_SRC_IS_HOST))
		return ct6_approve(skb, &p, hook) ? TC_ACT_SHOT : TC_ACT_OK;

	skb->cb[0] = idx_allowed[hook];
	skb->cb[1] = idx_drop[hook];
	ifs = bpf_map_lookup_elem(&iface, &ifindex);
	pol_idx = -1;
	if (ifs)
		pol_idx = hook == HOOK_INGRESS ? ifs->ingress_policy_v6 :
						 ifs->egress_policy_v6;
	if (pol_idx >= 0) {
		if (hook == HOOK_INGRESS)
			bpf_tail_call(skb, &jump_ing, pol_idx);
		else
			bpf_tail_call(skb, &jump_egr, pol_idx);
	}
	return TC_ACT_SHOT;
}

static __always_inline int tc_entry(struct __sk_buff *skb, const int hook,
				    const bool hep)
{
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		/* No IPv6 host endpoint in the lab. */
		if (hep)
			return TC_ACT_OK;
		if (bump_counter(skb->ifindex, hook, REASON_TOTAL))
			return TC_ACT_SHOT;
		return tc_main6(skb, hook);
	}
	return tc_main(skb, hook, hep);
}

SEC("tc")
int calico_from_wep(struct __sk_buff *skb)
{
	return tc_entry(skb, HOOK_INGRESS, false);
}

SEC("tc")
int calico_to_wep(struct __sk_buff *skb)
{
	return tc_entry(skb, HOOK_EGRESS, false);
}

SEC("tc")
int calico_from_hep(struct __sk_buff *skb)
{
	return tc_entry(skb, HOOK_INGRESS, true);
}

SEC("tc")
int calico_to_hep(struct __sk_buff *skb)
{
	return tc_entry(skb, HOOK_EGRESS, true);
}

/* ------------------------------------------------------------------------ */
/* "allowed" and "drop" */

static __always_inline int allowed(struct __sk_buff *skb, const int hook)
{
	struct lab_state *st = get_state();
	struct pkt p = {};
	__u32 ifindex = skb->ifindex;
	struct ifstate_value *ifs = bpf_map_lookup_elem(&iface, &ifindex);
	bool hep = ifs && (ifs->flags & IFS_HEP);

	if (!st)
		return TC_ACT_SHOT;
	bump_rule_counters(st);
	bump_counter(skb->ifindex, hook, REASON_ACCEPTED_BY_POLICY);
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct pkt6 p6 = {};

		if (!parse6(skb, &p6) || ct6_approve(skb, &p6, hook))
			return TC_ACT_SHOT;
		return TC_ACT_OK;
	}
	if (!parse(skb, &p))
		return TC_ACT_SHOT;
	if (hep)
		return ct_approve(skb, st, &p, hook ^ 1) ? TC_ACT_SHOT :
							   TC_ACT_OK;
	if (ct_approve(skb, st, &p, hook))
		return TC_ACT_SHOT;
	if (hook == HOOK_INGRESS &&
	    (st->pre_nat_ip_dst != st->post_nat_ip_dst ||
	     st->pre_nat_dport != st->post_nat_dport)) {
		if (rewrite(skb, &p, true, p.daddr, st->post_nat_ip_dst,
			    p.dport, st->post_nat_dport))
			return TC_ACT_SHOT;
	}
	if (hairpin(&p, hook) &&
	    rewrite(skb, &p, false, p.saddr, host_ip, p.sport, p.sport))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

static __always_inline int dropped(struct __sk_buff *skb, const int hook)
{
	struct lab_state *st = get_state();

	if (st)
		bump_rule_counters(st);
	bump_counter(skb->ifindex, hook, REASON_DROPPED_BY_POLICY);
	return TC_ACT_SHOT;
}

SEC("tc")
int calico_allow_in(struct __sk_buff *skb)
{
	return allowed(skb, HOOK_INGRESS);
}

SEC("tc")
int calico_allow_eg(struct __sk_buff *skb)
{
	return allowed(skb, HOOK_EGRESS);
}

SEC("tc")
int calico_drop_in(struct __sk_buff *skb)
{
	return dropped(skb, HOOK_INGRESS);
}

SEC("tc")
int calico_drop_eg(struct __sk_buff *skb)
{
	return dropped(skb, HOOK_EGRESS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
