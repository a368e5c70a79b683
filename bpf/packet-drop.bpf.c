// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* packet-drop: cgroup_skb ingress/egress programs that drop a share of a
 * cgroup's packets (network-loss, network-partition mode 'drop').
 * Attached once per target cgroup; each fault is a slot in that cgroup's rules,
 * so injecting a second fault is a map update, not a new attachment. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "packet-drop.h"

VC_SLOT_MAPS(drop, struct vc_pkt_rule, struct vc_drop_stats);

struct drop_walk {
	__u64 cgid;
	__u64 mask;
	__u32 dir;
	int verdict;
	struct vc_pkt p;
};

static long drop_slot(__u32 slot, void *data)
{
	struct drop_walk *w = data;
	struct vc_pkt_rule *r;
	struct vc_drop_stats *s = vc_slot_matching(&drop_rules, &drop_stats, w->cgid, w->mask, slot,
	                                           &w->p, w->dir, &r);

	if (!s)
		return 0;
	VC_COUNT(s, w->dir, seen);
	/* A packet already dropped by an earlier slot is seen but not drawn for. */
	if (!w->verdict)
		return 0;
	if ((r->flags & VC_PKT_ALL) || vc_draw(&s->rng) < r->threshold) {
		w->verdict = 0;
		VC_COUNT(s, w->dir, dropped);
	}
	return 0;
}

static __always_inline int filter(struct __sk_buff *skb, __u32 dir)
{
	__u64 cgid = bpf_skb_cgroup_id(skb);
	__u64 *mask = bpf_map_lookup_elem(&drop_slots, &cgid);
	struct drop_walk w = { .cgid = cgid, .dir = dir, .verdict = 1 };

	if (!mask || !*mask)
		return 1;
	w.mask = *mask;
	vc_parse_ip(skb, 0, &w.p, false);
	bpf_loop(vc_slot_span(w.mask), drop_slot, &w, 0);
	/* An egress drop returns 2 (drop + NET_XMIT_CN): the sender sees no
	 * error, as on a lossy wire. Plain 0 would fail UDP sends and TCP connects
	 * with EPERM at once, which is not what loss or a silent partition look like. */
	if (!w.verdict)
		return dir == VC_PKT_EGRESS ? 2 : 0;
	return 1;
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
