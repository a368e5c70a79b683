// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Connection faults for the sockets of one cgroup: connect4 rejects a
 * connection at once (partition 'reject') or rewrites its destination to a
 * userspace proxy (latency and the other data-path faults); sockops then records
 * the client's address so the proxy can find the original destination. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "connect.h"

#define SOCK_STREAM_ 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} conn_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_conn_rule);
} conn_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_conn_stats);
} conn_stats SEC(".maps");

/* socket cookie -> original destination, between connect4 and sockops. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vc_flow);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vc_flow_key);
	__type(value, struct vc_flow);
} flows SEC(".maps");

/* Every matching slot counts the connection. A reject wins over redirects
 * (the connection fails whatever else would happen to it). Redirects stack:
 * the connection goes to the proxy of the lowest (rank, slot) and the flow
 * record names every matching slot, so that proxy passes it through the
 * others' proxies in turn and every data-path fault on it is in force. */
SEC("cgroup/connect4")
int vc_connect4(struct bpf_sock_addr *ctx)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u32 *mask = bpf_map_lookup_elem(&conn_slots, &cgid);
	__u32 daddr, dport, redirects = 0, first = 0, first_rank = 0;
	__u32 to_addr = 0, to_port = 0;

	if (!mask || !*mask)
		return 1;
	daddr = ctx->user_ip4;
	dport = bpf_ntohs((__u16)ctx->user_port);
	for (__u32 slot = 0; slot < VC_MAX_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_conn_rule *r;
		struct vc_conn_stats *s;

		if (!(*mask & (1u << slot)))
			continue;
		r = bpf_map_lookup_elem(&conn_rules, &key);
		s = bpf_map_lookup_elem(&conn_stats, &key);
		if (!r || !s)
			continue;
		if (r->tcp_only && ctx->type != SOCK_STREAM_)
			continue;
		if (r->peer_mask && (daddr & r->peer_mask) != r->peer_addr)
			continue;
		if (r->port && r->port != dport)
			continue;
		/* Never loop the proxy's own address back into itself. */
		if (r->action == VC_CONN_REDIRECT && daddr == r->redirect_addr &&
		    (__u16)ctx->user_port == r->redirect_port)
			continue;
		__sync_fetch_and_add(&s->matched, 1);
		if (r->action == VC_CONN_REJECT) {
			__sync_fetch_and_add(&s->rejected, 1);
			return 0; /* connect() fails with EPERM at once */
		}
		if (r->action == VC_CONN_REDIRECT) {
			if (!redirects || r->rank < first_rank) {
				first = slot;
				first_rank = r->rank;
				to_addr = r->redirect_addr;
				to_port = r->redirect_port;
			}
			redirects |= 1u << slot;
		}
	}
	if (!redirects)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct vc_flow f = {
		.cgroup_id = cgid,
		.slot = first,
		.orig_addr = daddr,
		.orig_port = (__u16)ctx->user_port,
		.slots = redirects,
	};
	if (bpf_map_update_elem(&pending, &cookie, &f, BPF_ANY) != 0)
		return 1;
	ctx->user_ip4 = to_addr;
	ctx->user_port = to_port;
	for (__u32 slot = 0; slot < VC_MAX_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_conn_stats *s;

		if (!(redirects & (1u << slot)))
			continue;
		s = bpf_map_lookup_elem(&conn_stats, &key);
		if (s)
			__sync_fetch_and_add(&s->redirected, 1);
	}
	return 1;
}

SEC("sockops")
int vc_sockops(struct bpf_sock_ops *skops)
{
	struct vc_flow_key fk;
	struct vc_flow *f;
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	f = bpf_map_lookup_elem(&pending, &cookie);
	if (!f)
		return 1;
	fk.addr = skops->local_ip4;
	fk.port = skops->local_port;
	bpf_map_update_elem(&flows, &fk, f, BPF_ANY);
	bpf_map_delete_elem(&pending, &cookie);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
