/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of connect.bpf.c (cgroup/connect4 reject and redirect, sockops flow records). */
#ifndef VC_CONNECT_H
#define VC_CONNECT_H

#include "common.h"

#define VC_CONN_REJECT 1u
#define VC_CONN_REDIRECT 2u

struct vc_conn_rule {
	__u32 action;        /* VC_CONN_* */
	__u32 peer_addr;     /* IPv4 network order */
	__u32 peer_mask;     /* network order; 0 = any destination */
	__u16 port;          /* destination port, host order; 0 = any */
	__u16 redirect_port; /* network order */
	__u32 redirect_addr; /* network order */
	__u32 tcp_only;      /* 1: leave UDP and raw sockets alone */
};

struct vc_conn_stats {
	__u64 matched;
	__u64 rejected;
	__u64 redirected;
};

/* Where a redirected connection was going, looked up by the proxy by the
 * client's address as it sees it on accept(). */
struct vc_flow_key {
	__u32 addr; /* client IPv4, network order */
	__u32 port; /* client port, host order */
};

struct vc_flow {
	__u64 cgroup_id;
	__u32 slot;
	__u32 orig_addr; /* network order */
	__u16 orig_port; /* network order */
	__u16 pad;
	__u32 pad2;
};

#endif
