/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of netfilter.bpf.c (cgroup_skb ingress/egress packet faults). */
#ifndef VC_NETFILTER_H
#define VC_NETFILTER_H

#include "common.h"

#define VC_DIR_INGRESS 1u
#define VC_DIR_EGRESS 2u

/* rule.flags */
#define VC_RULE_DROP_ALL 4u /* drop every matching packet, no random draw */

struct vc_skb_rule {
	__u32 flags;          /* VC_DIR_* | VC_RULE_* */
	__u32 drop_threshold; /* drop when the 32-bit draw is below this */
	__u32 peer_addr;      /* IPv4, network order; with peer_mask */
	__u32 peer_mask;      /* network order; 0 matches every peer (and non-IPv4) */
	__u16 port;           /* host order; 0 = any; matches source or destination port */
	__u8 protocol;        /* IPPROTO_*; 0 = any */
	__u8 pad;
	__u32 pad2;
};

/* Written by the kernel side; rng holds the slot's PRNG state, seeded by user space. */
struct vc_skb_stats {
	__u64 ingress_seen;
	__u64 ingress_dropped;
	__u64 egress_seen;
	__u64 egress_dropped;
	__u64 rng;
};

#endif
