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

VC_SLOT_MAPS(dns, struct vc_dns_rule, struct vc_dns_stats);

enum hook { HOOK_CONNECT, HOOK_SENDMSG, HOOK_RECVMSG };

struct dns_walk {
	__u64 cgid;
	__u64 mask;
	struct bpf_sock_addr *ctx;
	enum hook hook;
	__u32 addr, port;
};

/* Returns 1 (stop) once a slot rewrote the address. */
static long dns_slot(__u32 slot, void *data)
{
	struct dns_walk *w = data;
	struct bpf_sock_addr *ctx = w->ctx;
	struct vc_slot_key key = { .cgroup_id = w->cgid, .slot = slot };
	struct vc_dns_rule *r;
	struct vc_dns_stats *s;

	if (!vc_slot_used(w->mask, slot))
		return 0;
	r = bpf_map_lookup_elem(&dns_rules, &key);
	s = bpf_map_lookup_elem(&dns_stats, &key);
	if (!r || !s)
		return 0;
	if (w->hook == HOOK_RECVMSG) {
		/* A reply from our resolver: say it came from the nameserver. */
		if (w->addr != r->redirect_addr || w->port != r->redirect_port)
			return 0;
		ctx->user_ip4 = r->ns_addr;
		ctx->user_port = r->ns_port;
		__sync_fetch_and_add(&s->replies_rewritten, 1);
		return 1;
	}
	if (w->addr != r->ns_addr || w->port != r->ns_port)
		return 0;
	ctx->user_ip4 = r->redirect_addr;
	ctx->user_port = r->redirect_port;
	if (w->hook == HOOK_CONNECT)
		__sync_fetch_and_add(&s->connects_redirected, 1);
	else
		__sync_fetch_and_add(&s->sends_redirected, 1);
	return 1;
}

static __always_inline int rewrite(struct bpf_sock_addr *ctx, enum hook hook)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	__u64 *mask = bpf_map_lookup_elem(&dns_slots, &cgid);
	struct dns_walk w = { .cgid = cgid, .ctx = ctx, .hook = hook };

	if (!mask || !*mask)
		return 1;
	w.mask = *mask;
	w.addr = ctx->user_ip4;
	w.port = (__u16)ctx->user_port;
	bpf_loop(vc_slot_span(w.mask), dns_slot, &w, 0);
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
