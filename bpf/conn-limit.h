/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of conn-limit.bpf.c (the connection-limit fault). */
#ifndef VC_CONN_LIMIT_H
#define VC_CONN_LIMIT_H

#include "common.h"

/* Faults of this kind per cgroup: its slot masks are 32-bit (bit 31 of a socket's
 * value marks a hung connect), below the 64 of the packet programs. Read by
 * SlottedPrograms in place of VC_MAX_SLOTS. */
enum vc_object_limits {
	VC_OBJECT_SLOTS = 16,
};

enum vc_climit_flags {
	VC_CLIMIT_INBOUND = 1u,  /* count (and limit) the connections the target accepts */
	VC_CLIMIT_OUTBOUND = 2u, /* ... and those it opens */
	VC_CLIMIT_HANG = 4u, /* over the limit: hang (drop the SYN) instead of failing at once */
};

/* A peer is up to VC_CLIMIT_PEERS address/mask pairs (a container's networks); none: any peer. */
struct vc_climit_rule {
	__u32 max;
	__u32 flags;
	__u16 port; /* host order; 0 = any. Inbound: the target's own port; outbound: the
	               destination's */
	__u16 npeers;
	__be32 peer0_addr;
	__be32 peer0_mask;
	__be32 peer1_addr;
	__be32 peer1_mask;
	__be32 peer2_addr;
	__be32 peer2_mask;
	__be32 peer3_addr;
	__be32 peer3_mask;
};

struct vc_climit_stats {
	__u64 accepted; /* connections counted against the limit */
	__u64 rejected; /* connections over the limit (failed or hung) */
	__s64 current;  /* counted connections not closed yet */
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_object_limits);
VC_EXPORT_ENUM(vc_climit_flags);
#endif

#endif
