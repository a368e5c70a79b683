/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of connect.bpf.c (cgroup/connect4 and connect6 reject and
 * redirect, sockops flow records). */
#ifndef VC_CONNECT_H
#define VC_CONNECT_H

#include "common.h"
#include "packet.h"

enum vc_conn_action {
	VC_CONN_REJECT = 1u,
	VC_CONN_REDIRECT = 2u,
};

struct vc_conn_rule {
	__u32 action;     /* enum vc_conn_action */
	__be32 peer_addr; /* IPv4 */
	__be32 peer_mask; /* 0 = any destination */
	__u16 port;       /* destination port; 0 = any */
	__be16 redirect_port;
	__be32 redirect_addr;
	__u32 tcp_only; /* 1: leave UDP and raw sockets alone */
	/* Of several matching redirects, the connection goes to the proxy of the
	 * lowest rank (then slot) first; the proxies pass it on in the same order. */
	__u32 rank;
	/* IPv6 (connect6): the peer is peer_addr6 under peer_mask6 when family is
	 * VC_FAMILY_IPV6 (an IPv4 peer never matches an IPv6 connection; family
	 * VC_FAMILY_ANY matches both); redirects go to redirect_addr6, and none
	 * happens while it is all zero (no IPv6 proxy). */
	__u32 family;
	__be32 peer_addr6[4];
	__be32 peer_mask6[4];
	__be32 redirect_addr6[4];
};

struct vc_conn_stats {
	__u64 matched;
	__u64 rejected;
	__u64 redirected;
};

/* Where a redirected connection was going, looked up by the proxy by the
 * client's address as it sees it on accept(). */
struct vc_flow_key {
	__be32 addr; /* client IPv4 */
	__u32 port;  /* client port */
};

struct vc_flow {
	__u64 cgroup_id;
	__u32 slot; /* the slot whose proxy got the connection */
	__be32 orig_addr;
	__be16 orig_port;
	__u16 pad;
	__u32 pad2;
	__u64 slots; /* bitmask of every redirect slot that matched: the proxies chain them */
	__be32 orig_addr6[4]; /* an IPv6 destination (then orig_addr is 0) */
};

/* flows6: the same for IPv6 clients. */
struct vc_flow6_key {
	__be32 addr[4]; /* client IPv6 */
	__u32 port;     /* client port */
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_conn_action);
#endif

#endif
