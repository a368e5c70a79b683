/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map layouts of dns.bpf.c (the target's DNS queries redirected to a fake
 * resolver, the replies' source rewritten back to the nameserver). */
#ifndef VC_DNS_H
#define VC_DNS_H

#include "common.h"

struct vc_dns_rule {
	__be32 ns_addr;       /* the nameserver the target asks (127.0.0.11) */
	__be16 ns_port;       /* 53 */
	__be16 redirect_port; /* our fake resolver */
	__be32 redirect_addr;
	__u32 pad;
};

struct vc_dns_stats {
	/* connect(2) to the nameserver: TCP, and UDP as glibc and c-ares use it */
	__u64 connects_redirected;
	__u64 sends_redirected;  /* sendto/sendmsg on unconnected UDP sockets */
	__u64 replies_rewritten; /* recvmsg source set back to the nameserver */
};

#endif
