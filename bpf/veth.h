/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of veth.bpf.c (packet corruption and duplication on a container's
 * host-side veth, attached with TCX). Rules are struct vc_pkt_rule (packet.h),
 * keyed by vc_slot_key with the veth's ifindex (host netns) in place of the
 * cgroup id; directions are the container's (host-veth ingress is its egress). */
#ifndef VC_VETH_H
#define VC_VETH_H

#include "packet.h"

/* Set on a duplicate's tc_index so the programs pass it through untouched. */
#define VC_VETH_CLONE_TAG 0x7c5d

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
