// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* DNS faults for the sockets of one cgroup. Queries to the nameserver go to a
 * fake resolver of ours: connect4 rewrites connected sockets (TCP, and UDP as
 * glibc and c-ares use it), sendmsg4 unconnected UDP sends. recvmsg4 then
 * makes the replies look like they came from the nameserver, because
 * resolvers drop answers from any other source. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "dns.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} dns_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_dns_rule);
} dns_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_dns_stats);
} dns_stats SEC(".maps");

enum hook { HOOK_CONNECT, HOOK_SENDMSG, HOOK_RECVMSG };

static __always_inline int rewrite(struct bpf_sock_addr *ctx, enum hook hook)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u32 *mask = bpf_map_lookup_elem(&dns_slots, &cgid);
	__u32 addr, port;

	if (!mask || !*mask)
		return 1;
	addr = ctx->user_ip4;
	port = (__u16)ctx->user_port;
	for (__u32 slot = 0; slot < VC_MAX_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_dns_rule *r;
		struct vc_dns_stats *s;

		if (!(*mask & (1u << slot)))
			continue;
		r = bpf_map_lookup_elem(&dns_rules, &key);
		s = bpf_map_lookup_elem(&dns_stats, &key);
		if (!r || !s)
			continue;
		if (hook == HOOK_RECVMSG) {
			/* A reply from our resolver: say it came from the nameserver. */
			if (addr != r->redirect_addr || port != r->redirect_port)
				continue;
			ctx->user_ip4 = r->ns_addr;
			ctx->user_port = r->ns_port;
			__sync_fetch_and_add(&s->replies_rewritten, 1);
			return 1;
		}
		if (addr != r->ns_addr || port != r->ns_port)
			continue;
		ctx->user_ip4 = r->redirect_addr;
		ctx->user_port = r->redirect_port;
		if (hook == HOOK_CONNECT)
			__sync_fetch_and_add(&s->connects_redirected, 1);
		else
			__sync_fetch_and_add(&s->sends_redirected, 1);
		return 1;
	}
	return 1;
}

SEC("cgroup/connect4")
int vc_dns_connect4(struct bpf_sock_addr *ctx)
{
	return rewrite(ctx, HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int vc_dns_sendmsg4(struct bpf_sock_addr *ctx)
{
	return rewrite(ctx, HOOK_SENDMSG);
}

SEC("cgroup/recvmsg4")
int vc_dns_recvmsg4(struct bpf_sock_addr *ctx)
{
	return rewrite(ctx, HOOK_RECVMSG);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
