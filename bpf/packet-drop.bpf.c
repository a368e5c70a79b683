// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* packet-drop: cgroup_skb ingress/egress programs that drop a share of a
 * cgroup's packets (network-loss, network-partition mode 'drop').
 * Attached once per target cgroup; each fault is a slot in that cgroup's rules,
 * so injecting a second fault is a map update, not a new attachment. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "packet-drop.h"

/* cgroup id -> bitmask of slots in use: one lookup decides for unfaulted traffic. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} drop_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_pkt_rule);
} drop_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * VC_MAX_SLOTS);
	__type(key, struct vc_slot_key);
	__type(value, struct vc_drop_stats);
} drop_stats SEC(".maps");

static __always_inline int filter(struct __sk_buff *skb, __u32 dir)
{
	__u64 cgid = bpf_skb_cgroup_id(skb);
	__u32 *mask = bpf_map_lookup_elem(&drop_slots, &cgid);
	struct vc_pkt p;
	int verdict = 1;

	if (!mask || !*mask)
		return 1;
	vc_parse_ipv4(skb, 0, &p, false);
	for (__u32 slot = 0; slot < VC_MAX_SLOTS; slot++) {
		struct vc_pkt_rule *r;
		struct vc_drop_stats *s =
		        vc_slot_matching(&drop_rules, &drop_stats, cgid, *mask, slot, &p, dir, &r);

		if (!s)
			continue;
		VC_COUNT(s, dir, seen);
		/* A packet already dropped by an earlier slot is seen but not drawn for. */
		if (!verdict)
			continue;
		if ((r->flags & VC_PKT_ALL) || vc_draw(&s->rng) < r->threshold) {
			verdict = 0;
			VC_COUNT(s, dir, dropped);
		}
	}
	/* An egress drop returns 2 (drop + NET_XMIT_CN): the sender sees no
	 * error, as on a lossy wire. Plain 0 would fail UDP sends and TCP connects
	 * with EPERM at once, which is not what loss or a silent partition look like. */
	if (!verdict && dir == VC_PKT_EGRESS)
		return 2;
	return verdict;
}

SEC("cgroup_skb/ingress")
int vc_drop_ingress(struct __sk_buff *skb)
{
	return filter(skb, VC_PKT_INGRESS);
}

SEC("cgroup_skb/egress")
int vc_drop_egress(struct __sk_buff *skb)
{
	return filter(skb, VC_PKT_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
