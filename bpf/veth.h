/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of veth.bpf.c (packet corruption and duplication on a container's
 * host-side veth, attached with TCX). Rules and counters are keyed by
 * vc_slot_key with the veth's ifindex (host netns) in place of the cgroup id. */
#ifndef VC_VETH_H
#define VC_VETH_H

#include "common.h"

/* Directions in the container's view: host-veth ingress is container egress. */
#define VC_VETH_DIR_INGRESS 1u
#define VC_VETH_DIR_EGRESS 2u

/* rule.flags: what a hit does */
#define VC_VETH_CORRUPT 8u   /* flip one payload byte; checksums are not fixed */
#define VC_VETH_DUPLICATE 16u /* send a copy of the packet on the same way */
#define VC_VETH_ALL 32u       /* act on every matching packet, no random draw */

/* Set on a duplicate's tc_index so the programs pass it through untouched. */
#define VC_VETH_CLONE_TAG 0x7c5d

struct vc_veth_rule {
	__u32 flags;     /* VC_VETH_DIR_* | VC_VETH_CORRUPT or VC_VETH_DUPLICATE */
	__u32 threshold; /* act when the 32-bit draw is below this */
	__u32 peer_addr; /* IPv4, network order; with peer_mask */
	__u32 peer_mask; /* network order; 0 matches every peer (and non-IPv4) */
	__u16 port;      /* host order; 0 = any; matches source or destination port */
	__u8 protocol;   /* IPPROTO_*; 0 = any */
	__u8 pad;
	__u32 pad2;
};

/* Written by the kernel side; rng holds the slot's PRNG state, seeded by user space.
 * *_hit: packets corrupted or duplicated; *_offloaded: hits whose L4 checksum
 * was still to be computed (CHECKSUM_PARTIAL), which a veth receiver trusts. */
struct vc_veth_stats {
	__u64 ingress_seen;
	__u64 ingress_hit;
	__u64 ingress_offloaded;
	__u64 egress_seen;
	__u64 egress_hit;
	__u64 egress_offloaded;
	__u64 rng;
};

#endif
