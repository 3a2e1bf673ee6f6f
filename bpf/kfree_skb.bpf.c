// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * `dpinspect watch --source kfree_skb`: every packet the kernel frees as
 * dropped (tracepoint skb:kfree_skb) on one network namespace's watched
 * interfaces, with its drop reason and the start of its IP header, through a
 * ring buffer. Read-only: it attaches to a tracepoint and changes no packet.
 *
 * The kernel types are declared here with only the fields read, relocated by
 * CO-RE against the running kernel's BTF, so the build needs no vmlinux.h.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "kfree_skb_event.h"

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	unsigned char *head;
	__u16 network_header;
	unsigned int tail;
	__be16 protocol;
} __attribute__((preserve_access_index));

/* Set before attaching: the inode number of the watched network namespace. */
__u32 target_netns = 0;
/* Events the ring buffer had no room for. */
__u64 lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

SEC("tp_btf/kfree_skb")
int BPF_PROG(dpi_kfree_skb, struct sk_buff *skb, void *location, int reason)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct dpi_drop_event *e;
	__u32 ifindex, inum;
	__u16 proto, nh;
	__u32 tail, len;
	unsigned char *head;

	if (!dev)
		return 0;
	/* Interface numbers repeat across namespaces: both must match. */
	inum = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	if (inum != target_netns)
		return 0;
	ifindex = BPF_CORE_READ(dev, ifindex);
	if (!bpf_map_lookup_elem(&watched_ifindex, &ifindex))
		return 0;
	proto = BPF_CORE_READ(skb, protocol);
	if (proto != bpf_htons(0x0800) && proto != bpf_htons(0x86DD))
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	e->ifindex = ifindex;
	e->reason = (__u32)reason;
	e->protocol = proto;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	tail = BPF_CORE_READ(skb, tail);
	len = tail > nh ? tail - nh : 0;
	if (len > DPI_DROP_BYTES)
		len = DPI_DROP_BYTES;
	e->len = len;
	if (bpf_probe_read_kernel(e->data, len & (DPI_DROP_BYTES * 2 - 1),
				  head + nh))
		e->len = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
