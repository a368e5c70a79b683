// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* connection-limit: at most `max` TCP connections of the target at once.
 * sockops counts a connection when the target opens it (TCP_CONNECT_CB) or
 * accepts it (PASSIVE_ESTABLISHED_CB), a tracepoint uncounts it when it closes;
 * the keeping out happens before a connection exists: connect4 refuses the
 * target's own connect (EPERM at once) or lets it go with its SYN dropped by the
 * egress program (hang); a TCX program on the target's host-side veth answers a
 * SYN for the target with a RST (refused at once) or drops it (hang). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "conn-limit.h"

#define ETH_P_IP_ 0x0800
#define IPPROTO_TCP_ 6
#define TCP_CLOSE_ 7
#define TC_ACT_SHOT_ 2
#define TC_ACT_UNSPEC_ (-1)
#define BPF_F_INGRESS_ 1
#define SOCK_STREAM_ 1
#define HUNG_BIT (1u << 31)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} climit_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_OBJECT_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_climit_rule);
} climit_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_OBJECT_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_climit_stats);
} climit_stats SEC(".maps");

/* host-side veth ifindex -> the target's cgroup id (for the TCX program). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} climit_ifaces SEC(".maps");

/* socket cookie -> the slots that counted it (bit 31: a hung connect, counted by none). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} climit_socks SEC(".maps");

static __always_inline bool peer_ok(const struct vc_climit_rule *r, __u32 addr)
{
	if (r->npeers == 0)
		return true;
	if ((addr & r->peer0_mask) == r->peer0_addr)
		return true;
	if (r->npeers > 1 && (addr & r->peer1_mask) == r->peer1_addr)
		return true;
	if (r->npeers > 2 && (addr & r->peer2_mask) == r->peer2_addr)
		return true;
	return r->npeers > 3 && (addr & r->peer3_mask) == r->peer3_addr;
}

static __always_inline bool rule_matches(const struct vc_climit_rule *r, __u32 dir, __u32 addr,
                                         __u32 port)
{
	return (r->flags & dir) && peer_ok(r, addr) && (!r->port || r->port == port);
}

/* The slots over their limit for a connection (bitmask), with HUNG_BIT when one
 * of them hangs it. Global (verified once, on its own): inlined in a loop in
 * every caller the verifier's states multiply past its limit. */
__noinline __u32 over_limit(__u64 cgid, __u32 dir, __u32 addr, __u32 port)
{
	__u32 *mask = bpf_map_lookup_elem(&climit_slots, &cgid);
	__u32 over = 0;

	if (!mask || !*mask)
		return 0;
	for (__u32 slot = 0; slot < VC_OBJECT_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_climit_rule *r;
		struct vc_climit_stats *s;

		if (!(*mask & (1u << slot)))
			continue;
		r = bpf_map_lookup_elem(&climit_rules, &key);
		s = bpf_map_lookup_elem(&climit_stats, &key);
		if (!r || !s || !rule_matches(r, dir, addr, port))
			continue;
		if (s->current >= (__s64)r->max) {
			over |= 1u << slot;
			if (r->flags & VC_CLIMIT_HANG)
				over |= HUNG_BIT;
			__sync_fetch_and_add(&s->rejected, 1);
		}
	}
	return over;
}

/* Counts a new connection in every matching slot; returns those slots. */
__noinline __u32 count_in(__u64 cgid, __u32 dir, __u32 addr, __u32 port)
{
	__u32 *mask = bpf_map_lookup_elem(&climit_slots, &cgid);
	__u32 counted = 0;

	if (!mask || !*mask)
		return 0;
	for (__u32 slot = 0; slot < VC_OBJECT_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_climit_rule *r;
		struct vc_climit_stats *s;

		if (!(*mask & (1u << slot)))
			continue;
		r = bpf_map_lookup_elem(&climit_rules, &key);
		s = bpf_map_lookup_elem(&climit_stats, &key);
		if (!r || !s || !rule_matches(r, dir, addr, port))
			continue;
		__sync_fetch_and_add(&s->accepted, 1);
		__sync_fetch_and_add(&s->current, 1);
		counted |= 1u << slot;
	}
	return counted;
}

static __always_inline void count_out(__u64 cgid, __u32 counted)
{
	for (__u32 slot = 0; slot < VC_OBJECT_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_climit_stats *s;

		if (!(counted & (1u << slot)))
			continue;
		/* A slot released meanwhile has no counters left: nothing to uncount. */
		s = bpf_map_lookup_elem(&climit_stats, &key);
		if (s)
			__sync_fetch_and_add(&s->current, -1);
	}
}

SEC("cgroup/connect4")
int vc_climit_connect4(struct bpf_sock_addr *ctx)
{
	__u32 over;

	if (ctx->type != SOCK_STREAM_)
		return 1;
	over = over_limit(bpf_get_current_cgroup_id(), VC_CLIMIT_OUTBOUND, ctx->user_ip4,
	                  bpf_ntohs((__u16)ctx->user_port));
	if (!over)
		return 1;
	if (!(over & HUNG_BIT))
		return 0; /* connect() fails with EPERM at once */
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 v = HUNG_BIT;
	bpf_map_update_elem(&climit_socks, &cookie, &v, BPF_ANY);
	return 1;
}

/* The hung connects' packets (their SYNs) go nowhere. */
SEC("cgroup_skb/egress")
int vc_climit_egress(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 *v = bpf_map_lookup_elem(&climit_socks, &cookie);

	return v && (*v & HUNG_BIT) ? 0 : 1;
}

/* The socket's cgroup (sockops runs in softirq for accepted sockets and closes:
 * not the current task's). sockops has no bpf_sk_cgroup_id; CO-RE reads it. */
static __always_inline __u64 sock_cgroup(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp;

	if (!bsk)
		return 0;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 0;
	return BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup, kn, id);
}

SEC("sockops")
int vc_climit_sockops(struct bpf_sock_ops *skops)
{
	__u64 cgid, cookie;
	__u32 counted, *v;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		cookie = bpf_get_socket_cookie(skops);
		v = bpf_map_lookup_elem(&climit_socks, &cookie);
		if (v)
			return 1; /* hung: not counted */
		cgid = sock_cgroup(skops);
		counted = count_in(cgid, VC_CLIMIT_OUTBOUND, skops->remote_ip4,
		                   (__u16)bpf_ntohl(skops->remote_port));
		if (counted)
			bpf_map_update_elem(&climit_socks, &cookie, &counted, BPF_ANY);
		return 1;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* Softirq: the listener's cgroup is the socket's (the sockops program runs for it).
		 */
		cookie = bpf_get_socket_cookie(skops);
		cgid = sock_cgroup(skops);
		if (!cgid)
			return 1;
		counted = count_in(cgid, VC_CLIMIT_INBOUND, skops->remote_ip4,
		                   (__u16)skops->local_port);
		if (counted)
			bpf_map_update_elem(&climit_socks, &cookie, &counted, BPF_ANY);
		return 1;
	}
	return 1;
}

/* A connection closes: uncounted from the slots that counted it. A tracepoint, not
 * sockops' STATE_CB: that needs a flag set on the socket, which the connections the
 * target had before the fault (counted by user space at inject, by cookie) never got. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vc_climit_close, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 cookie;
	__u32 *v, counted;

	if (newstate != TCP_CLOSE_)
		return 0;
	cookie = bpf_get_socket_cookie((void *)sk);
	v = bpf_map_lookup_elem(&climit_socks, &cookie);
	if (!v)
		return 0;
	counted = *v & ~HUNG_BIT;
	if (counted)
		count_out(BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id), counted);
	bpf_map_delete_elem(&climit_socks, &cookie);
	return 0;
}

/* Host-side egress of the target's veth: a SYN coming to the target. Over the
 * limit it is dropped (hang) or turned into the RST the target would send and
 * put back on the host side, so the client's connect() is refused at once. */
SEC("tc")
int vc_climit_tc(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	__u64 *cgid = bpf_map_lookup_elem(&climit_ifaces, &ifindex);
	void *data, *end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 over, ihl;

	if (!cgid || skb->protocol != bpf_htons(ETH_P_IP_))
		return TC_ACT_UNSPEC_;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP_)
		return TC_ACT_UNSPEC_;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return TC_ACT_UNSPEC_;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > end || !tcp->syn || tcp->ack || tcp->rst)
		return TC_ACT_UNSPEC_;
	over = over_limit(*cgid, VC_CLIMIT_INBOUND, ip->saddr, bpf_ntohs(tcp->dest));
	if (!over)
		return TC_ACT_UNSPEC_;
	if (over & HUNG_BIT)
		return TC_ACT_SHOT_;

	/* The RST|ACK answering the SYN: addresses and ports swapped (which leaves the
	 * checksums' sums as they were), seq 0, ack = the SYN's seq + 1. */
	__u8 mac[6];
	__u32 a = ip->saddr;
	__u16 p = tcp->source;
	__u32 old_seq = tcp->seq, old_ack = tcp->ack_seq,
	      new_ack = bpf_htonl(bpf_ntohl(tcp->seq) + 1);
	__u32 old_word, new_word;
	__u32 l4 = sizeof(*eth) + ihl;

	__builtin_memcpy(mac, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, mac, 6);
	ip->saddr = ip->daddr;
	ip->daddr = a;
	tcp->source = tcp->dest;
	tcp->dest = p;
	/* bytes 12-15 of the header: data offset, flags, window */
	old_word = *(__u32 *)((void *)tcp + 12);
	tcp->syn = 0;
	tcp->rst = 1;
	tcp->ack = 1;
	tcp->window = 0;
	new_word = *(__u32 *)((void *)tcp + 12);
	tcp->seq = 0;
	tcp->ack_seq = new_ack;
	bpf_l4_csum_replace(skb, l4 + 16, old_seq, 0, sizeof(__u32));
	bpf_l4_csum_replace(skb, l4 + 16, old_ack, new_ack, sizeof(__u32));
	bpf_l4_csum_replace(skb, l4 + 16, old_word, new_word, sizeof(__u32));
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS_);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
