// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Connection faults for the sockets of one cgroup: connect4 / connect6 reject a
 * connection at once (partition 'reject') or rewrites its destination to a
 * userspace proxy (latency and the other data-path faults); sockops then records
 * the client's address so the proxy can find the original destination. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "connect.h"

#define SOCK_STREAM_ 1

VC_SLOT_MAPS(conn, struct vc_conn_rule, struct vc_conn_stats);

/* socket cookie -> original destination, between connect4/6 and sockops.
 * LRU maps are always preallocated: their sizes are the memory they hold
 * (about 120 bytes an entry), so they are sized for connections in flight
 * between connect() and the proxy's accept(), not for every connection. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct vc_flow);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vc_flow_key);
	__type(value, struct vc_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vc_flow6_key);
	__type(value, struct vc_flow);
} flows6 SEC(".maps");

struct conn_walk {
	__u64 cgid;
	__u64 mask;
	__u32 type;
	__u32 family;    /* VC_FAMILY_IPV4 or VC_FAMILY_IPV6 */
	__be32 daddr[4]; /* IPv4 in word 0 */
	__u16 dport;     /* host order */
	__be16 dport_be;
	bool reject;
	__u64 redirects;
	__u32 first, first_rank;
	__be32 to_addr[4];
	__be16 to_port;
};

static __always_inline bool conn_matches(const struct vc_conn_rule *r, const struct conn_walk *w)
{
	if (r->tcp_only && w->type != SOCK_STREAM_)
		return false;
	if (r->port && r->port != w->dport)
		return false;
	if (w->family == VC_FAMILY_IPV4) {
		if (r->family == VC_FAMILY_IPV6)
			return false;
		if (r->peer_mask && (w->daddr[0] & r->peer_mask) != r->peer_addr)
			return false;
		/* Never loop the proxy's own address back into itself. */
		return !(r->action == VC_CONN_REDIRECT && w->daddr[0] == r->redirect_addr &&
		         w->dport_be == r->redirect_port);
	}
	if (r->family == VC_FAMILY_IPV4)
		return false;
	if (r->family == VC_FAMILY_IPV6)
		for (int i = 0; i < 4; i++)
			if ((w->daddr[i] & r->peer_mask6[i]) != r->peer_addr6[i])
				return false;
	if (r->action != VC_CONN_REDIRECT)
		return true;
	/* No IPv6 proxy: the rule cannot carry IPv6 connections. */
	if (!(r->redirect_addr6[0] | r->redirect_addr6[1] | r->redirect_addr6[2] |
	      r->redirect_addr6[3]))
		return false;
	return !(w->dport_be == r->redirect_port && w->daddr[0] == r->redirect_addr6[0] &&
	         w->daddr[1] == r->redirect_addr6[1] && w->daddr[2] == r->redirect_addr6[2] &&
	         w->daddr[3] == r->redirect_addr6[3]);
}

static long conn_slot(__u32 slot, void *data)
{
	struct conn_walk *w = data;
	struct vc_slot_key key = { .cgroup_id = w->cgid, .slot = slot };
	struct vc_conn_rule *r;
	struct vc_conn_stats *s;

	if (!vc_slot_used(w->mask, slot))
		return 0;
	r = bpf_map_lookup_elem(&conn_rules, &key);
	s = bpf_map_lookup_elem(&conn_stats, &key);
	if (!r || !s || !conn_matches(r, w))
		return 0;
	__sync_fetch_and_add(&s->matched, 1);
	if (r->action == VC_CONN_REJECT) {
		__sync_fetch_and_add(&s->rejected, 1);
		w->reject = true;
		return 1;
	}
	if (r->action == VC_CONN_REDIRECT) {
		if (!w->redirects || r->rank < w->first_rank) {
			w->first = slot;
			w->first_rank = r->rank;
			w->to_port = r->redirect_port;
			if (w->family == VC_FAMILY_IPV4)
				w->to_addr[0] = r->redirect_addr;
			else
				__builtin_memcpy(w->to_addr, r->redirect_addr6, 16);
		}
		if (slot < VC_MAX_SLOTS)
			w->redirects |= 1ull << slot;
	}
	return 0;
}

static long conn_count_redirect(__u32 slot, void *data)
{
	struct conn_walk *w = data;
	struct vc_slot_key key = { .cgroup_id = w->cgid, .slot = slot };
	struct vc_conn_stats *s;

	if (!vc_slot_used(w->redirects, slot))
		return 0;
	s = bpf_map_lookup_elem(&conn_stats, &key);
	if (s)
		__sync_fetch_and_add(&s->redirected, 1);
	return 0;
}

/* Every matching slot counts the connection. A reject wins over redirects
 * (the connection fails whatever else would happen to it). Redirects stack:
 * the connection goes to the proxy of the lowest (rank, slot) and the flow
 * record names every matching slot, so that proxy passes it through the
 * others' proxies in turn and every data-path fault on it is in force.
 * Returns 0 to refuse the connect(), 1 to let it go (to w->to_addr when
 * w->redirects is set). */
static __always_inline int conn_decide(struct bpf_sock_addr *ctx, struct conn_walk *w)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u64 *mask = bpf_map_lookup_elem(&conn_slots, &cgid);
	__u64 cookie;
	struct vc_flow f = {};

	if (!mask || !*mask)
		return 1;
	w->cgid = cgid;
	w->mask = *mask;
	w->type = ctx->type;
	w->dport_be = (__u16)ctx->user_port;
	w->dport = bpf_ntohs(w->dport_be);
	bpf_loop(vc_slot_span(w->mask), conn_slot, w, 0);
	if (w->reject)
		return 0; /* connect() fails with EPERM at once */
	if (!w->redirects)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	f.cgroup_id = cgid;
	f.slot = w->first;
	f.orig_port = w->dport_be;
	f.slots = w->redirects;
	if (w->family == VC_FAMILY_IPV4)
		f.orig_addr = w->daddr[0];
	else
		__builtin_memcpy(f.orig_addr6, w->daddr, 16);
	if (bpf_map_update_elem(&pending, &cookie, &f, BPF_ANY) != 0) {
		w->redirects = 0;
		return 1;
	}
	bpf_loop(vc_slot_span(w->redirects), conn_count_redirect, w, 0);
	return 1;
}

SEC("cgroup/connect4")
int vc_connect4(struct bpf_sock_addr *ctx)
{
	struct conn_walk w = { .family = VC_FAMILY_IPV4 };

	w.daddr[0] = ctx->user_ip4;
	if (!conn_decide(ctx, &w))
		return 0;
	if (w.redirects) {
		ctx->user_ip4 = w.to_addr[0];
		ctx->user_port = w.to_port;
	}
	return 1;
}

SEC("cgroup/connect6")
int vc_connect6(struct bpf_sock_addr *ctx)
{
	struct conn_walk w = { .family = VC_FAMILY_IPV6 };

	w.daddr[0] = ctx->user_ip6[0];
	w.daddr[1] = ctx->user_ip6[1];
	w.daddr[2] = ctx->user_ip6[2];
	w.daddr[3] = ctx->user_ip6[3];
	if (!conn_decide(ctx, &w))
		return 0;
	if (w.redirects) {
		ctx->user_ip6[0] = w.to_addr[0];
		ctx->user_ip6[1] = w.to_addr[1];
		ctx->user_ip6[2] = w.to_addr[2];
		ctx->user_ip6[3] = w.to_addr[3];
		ctx->user_port = w.to_port;
	}
	return 1;
}

SEC("sockops")
int vc_sockops(struct bpf_sock_ops *skops)
{
	struct vc_flow *f;
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	f = bpf_map_lookup_elem(&pending, &cookie);
	if (!f)
		return 1;
	if (skops->family == 10 /* AF_INET6 */) {
		struct vc_flow6_key fk = { .port = skops->local_port };

		fk.addr[0] = skops->local_ip6[0];
		fk.addr[1] = skops->local_ip6[1];
		fk.addr[2] = skops->local_ip6[2];
		fk.addr[3] = skops->local_ip6[3];
		bpf_map_update_elem(&flows6, &fk, f, BPF_ANY);
	} else {
		struct vc_flow_key fk = { .addr = skops->local_ip4, .port = skops->local_port };

		bpf_map_update_elem(&flows, &fk, f, BPF_ANY);
	}
	bpf_map_delete_elem(&pending, &cookie);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
