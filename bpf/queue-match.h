/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of queue-match.bpf.c: the iptables bpf match (xt_bpf) of the
 * packet data path's kept rules. Each rule of a target's netns queues what one
 * slot's program accepts; the slot's fault (scope, peers, ports, open
 * connections, followed proxies) is map entries, so putting a fault in force
 * on a rule already made is a map update. Addresses are 16 bytes: IPv6, or
 * IPv4 mapped (::ffff:a.b.c.d), so one prefix compare covers both. */
#ifndef VC_QUEUE_MATCH_H
#define VC_QUEUE_MATCH_H

#include "common.h"

enum vc_qm_limits {
	/* Slots of one process: each is a rule (per hook and family) in one netns while that netns
	   keeps its rules. */
	VC_QM_SLOTS = 256,
	/* Peers (CIDRs) a slot matches against; none: every peer. */
	VC_QM_PEERS = 8,
	/* Slots in use at once in one netns (a group). */
	VC_QM_GROUP = 64,
};

enum vc_qm_flags {
	VC_QM_ACTIVE = 1u,
	/* Connections the target accepts: to `port`, or to a port it listens on. */
	VC_QM_INBOUND = 2u,
	/* Every connection it opens (not from a port it listens on), to `port` if set. */
	VC_QM_OUTBOUND_ALL = 4u,
	/* Only the connections it opens that are listed in qm_flows (a proxy carries the new ones).
	 */
	VC_QM_OUTBOUND_LISTED = 8u,
	/* What the target receives too (the INPUT rule), not only what it sends. */
	VC_QM_BOTH_HOOKS = 16u,
	/* Only packets carrying a FIN. */
	VC_QM_FIN_ONLY = 32u,
	/* `port` is set. */
	VC_QM_PORT = 64u,
	/* The slot is a REDIRECT of new inbound connections (nat PREROUTING, vc_qm_redirect), not a
	   queue. */
	VC_QM_REDIRECT = 128u,
};

struct vc_qm_slot {
	__u32 flags; /* enum vc_qm_flags */
	__u32 port;
	__u32 npeers; /* 0: every peer */
	__u32 gen;    /* this fault's generation of the slot: its qm_ports keys carry it */
	__u32 group;  /* the netns's group: of its slots that take a packet, the newest gets it */
	__u8 peer_addr[VC_QM_PEERS * 16];
	__u8 peer_mask[VC_QM_PEERS * 16]; /* 128-bit masks (IPv4: 96 ones, then its own) */
	__u64 matched;                    /* packets the program accepted (queued) */
};

/* The slots in use in one netns, newest first (qm_groups[group]). */
struct vc_qm_group {
	__u32 n;
	__u32 slots[VC_QM_GROUP];
};

/* A port the slot's target listens on: its connections are inbound. Listed at inject, and
 * learned from each SYN the target receives (a port it listens on later counts too); keys of
 * an older generation of the slot never match, and age out of the LRU map. */
struct vc_qm_port_key {
	__u32 slot;
	__u32 gen;
	__u32 port;
};

/* A connection the target had open at inject (outbound, VC_QM_OUTBOUND_LISTED), as the target sees
 * it. */
struct vc_qm_flow_key {
	__u32 slot;
	__u16 local_port;
	__u16 remote_port;
	__u8 local[16];
	__u8 remote[16];
};

/* Another fault's proxy whose connections this slot follows: an outbound
 * proxy's listener (addr, port), or an inbound proxy's port in the netns
 * (addr all zero; the slot's peers apply). */
struct vc_qm_proxy_key {
	__u32 slot;
	__u32 port;
	__u8 addr[16];
};

#endif
