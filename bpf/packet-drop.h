/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of packet-drop.bpf.c (cgroup_skb ingress/egress: loss and drop
 * partitions). Rules are struct vc_pkt_rule (packet.h). */
#ifndef VC_PACKET_DROP_H
#define VC_PACKET_DROP_H

#include "packet.h"

/* Written by the kernel side; rng holds the slot's PRNG state, seeded by user space. */
struct vc_drop_stats {
	__u64 ingress_seen;
	__u64 ingress_dropped;
	__u64 egress_seen;
	__u64 egress_dropped;
	__u64 rng;
};

#endif
