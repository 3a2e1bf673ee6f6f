/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The ring buffer record of kfree_skb.bpf.c, shared with its reader
 * (backends/linux/kfree_skb.cpp).
 */
#ifndef DPI_KFREE_SKB_EVENT_H
#define DPI_KFREE_SKB_EVENT_H

#include <linux/types.h>

/* Enough for an IPv6 header and the ports or ICMP type behind it. */
#define DPI_DROP_BYTES 64

struct dpi_drop_event {
	__u32 ifindex;
	__u32 reason; /* enum skb_drop_reason, named from the kernel's BTF */
	__u16 protocol; /* skb->protocol, network order */
	__u16 len; /* bytes of data[] copied from the IP header on */
	__u8 data[DPI_DROP_BYTES];
};

#endif
