// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Packet faults (loss, drop-partition) for the sockets of one cgroup.
 * Attached once per target cgroup; each fault is a slot in that cgroup's rules,
 * so injecting a second fault is a map update, not a new attachment. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "netfilter.h"

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

/* cgroup id -> bitmask of slots in use: one lookup decides for unfaulted traffic. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} skb_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_skb_rule);
} skb_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_skb_stats);
} skb_stats SEC(".maps");

struct pkt {
	bool ipv4;
	__u8 protocol;
	__u32 saddr, daddr;
	__u16 sport, dport;
};

static __always_inline void parse(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr iph;

	__builtin_memset(p, 0, sizeof(*p));
	if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) < 0 || iph.version != 4)
		return;
	p->ipv4 = true;
	p->protocol = iph.protocol;
	p->saddr = iph.saddr;
	p->daddr = iph.daddr;
	p->sport = p->dport = 0;
	/* Ports only for the first fragment. */
	if ((iph.protocol == IPPROTO_TCP_ || iph.protocol == IPPROTO_UDP_) &&
	    !(iph.frag_off & bpf_htons(0x1fff))) {
		__be16 ports[2];
		if (bpf_skb_load_bytes(skb, iph.ihl * 4, ports, sizeof(ports)) == 0) {
			p->sport = bpf_ntohs(ports[0]);
			p->dport = bpf_ntohs(ports[1]);
		}
	}
}

static __always_inline bool matches(const struct vc_skb_rule *r, const struct pkt *p, __u32 dir)
{
	if (!(r->flags & dir))
		return false;
	if (!p->ipv4)
		return r->peer_mask == 0 && r->port == 0 && r->protocol == 0;
	if (r->protocol && r->protocol != p->protocol)
		return false;
	if (r->port && r->port != p->sport && r->port != p->dport)
		return false;
	if (r->peer_mask) {
		__u32 remote = dir == VC_DIR_EGRESS ? p->daddr : p->saddr;
		if ((remote & r->peer_mask) != r->peer_addr)
			return false;
	}
	return true;
}

static __always_inline int filter(struct __sk_buff *skb, __u32 dir)
{
	__u64 cgid = bpf_skb_cgroup_id(skb);
	__u32 *mask = bpf_map_lookup_elem(&skb_slots, &cgid);
	struct pkt p = {};
	int verdict = 1;

	if (!mask || !*mask)
		return 1;
	parse(skb, &p);
	for (__u32 slot = 0; slot < VC_MAX_SLOTS; slot++) {
		struct vc_slot_key key = { .cgroup_id = cgid, .slot = slot };
		struct vc_skb_rule *r;
		struct vc_skb_stats *s;

		if (!(*mask & (1u << slot)))
			continue;
		r = bpf_map_lookup_elem(&skb_rules, &key);
		s = bpf_map_lookup_elem(&skb_stats, &key);
		if (!r || !s || !matches(r, &p, dir))
			continue;
		if (dir == VC_DIR_EGRESS)
			__sync_fetch_and_add(&s->egress_seen, 1);
		else
			__sync_fetch_and_add(&s->ingress_seen, 1);
		/* A packet already dropped by an earlier slot is seen but not drawn for. */
		if (!verdict)
			continue;
		if ((r->flags & VC_RULE_DROP_ALL) || vc_draw(&s->rng) < r->drop_threshold) {
			verdict = 0;
			if (dir == VC_DIR_EGRESS)
				__sync_fetch_and_add(&s->egress_dropped, 1);
			else
				__sync_fetch_and_add(&s->ingress_dropped, 1);
		}
	}
	/* An egress drop returns 2 (drop + NET_XMIT_CN): the sender sees no
	 * error, as on a lossy wire. Plain 0 would fail UDP sends and TCP connects
	 * with EPERM at once, which is not what loss or a silent partition look like. */
	if (!verdict && dir == VC_DIR_EGRESS)
		return 2;
	return verdict;
}

SEC("cgroup_skb/ingress")
int vc_ingress(struct __sk_buff *skb)
{
	return filter(skb, VC_DIR_INGRESS);
}

SEC("cgroup_skb/egress")
int vc_egress(struct __sk_buff *skb)
{
	return filter(skb, VC_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
