// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Packet corruption and duplication on a container's host-side veth (TCX).
 * Attached once per veth; each fault is a slot in that veth's rules, so a
 * second fault is a map update. The host side sees the container's traffic
 * mirrored: what arrives at its ingress is what the container sends. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "veth.h"

#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define CHECKSUM_PARTIAL_ 3
#define TC_ACT_UNSPEC_ (-1) /* TCX_NEXT: let later programs and the stack decide */
#define BPF_F_INGRESS_ 1

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

VC_SLOT_MAPS(veth, struct vc_pkt_rule, struct vc_veth_stats);

static __always_inline bool offloaded(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);

	return BPF_CORE_READ_BITFIELD(skb, ip_summed) == CHECKSUM_PARTIAL_;
}

/* Flips one payload byte with a non-zero mask. Nothing is fixed afterwards:
 * the L4 checksum (computed or still to be computed) stays as it was. */
static __always_inline bool corrupt(struct __sk_buff *skb, const struct vc_pkt *p,
                                    struct vc_veth_stats *s)
{
	__u32 off = p->payload_off + vc_draw(&s->rng) % p->payload_len;
	__u8 b;

	if (bpf_skb_load_bytes(skb, off, &b, 1) < 0)
		return false;
	b ^= (__u8)(vc_draw(&s->rng) | 1);
	return bpf_skb_store_bytes(skb, off, &b, 1, 0) == 0;
}

/* A copy of the packet on the same way: back into the host's ingress for what
 * the container sent, out of the veth again for what it receives. The copy is
 * tagged so that these programs let it pass when it comes through again. */
static __always_inline bool duplicate(struct __sk_buff *skb, __u32 dir)
{
	long rc;

	if (skb->tc_index)
		return false; /* someone else's tag: the copy could not be told apart */
	skb->tc_index = VC_VETH_CLONE_TAG;
	rc = bpf_clone_redirect(skb, skb->ifindex, dir == VC_PKT_EGRESS ? BPF_F_INGRESS_ : 0);
	skb->tc_index = 0;
	return rc == 0;
}

struct veth_walk {
	__u64 ifindex;
	__u64 mask;
	struct __sk_buff *skb;
	__u32 dir;
	bool corrupted, duplicated;
	struct vc_pkt p;
};

static long veth_slot(__u32 slot, void *data)
{
	struct veth_walk *w = data;
	struct __sk_buff *skb = w->skb;
	__u32 dir = w->dir;
	struct vc_pkt_rule *r;
	struct vc_veth_stats *s = vc_slot_matching(&veth_rules, &veth_stats, w->ifindex, w->mask,
	                                           slot, &w->p, dir, &r);
	bool hit = false;

	if (!s)
		return 0;
	VC_COUNT(s, dir, seen);
	/* Draw only for packets this slot can act on, so a seed replays. */
	if ((r->flags & VC_PKT_CORRUPT) && !w->corrupted && w->p.payload_len > 0 &&
	    ((r->flags & VC_PKT_ALL) || vc_draw(&s->rng) < r->threshold)) {
		bool partial = offloaded(skb);

		hit = w->corrupted = corrupt(skb, &w->p, s);
		if (hit && partial)
			VC_COUNT(s, dir, offloaded);
	} else if ((r->flags & VC_PKT_DUPLICATE) && !w->duplicated &&
	           ((r->flags & VC_PKT_ALL) || vc_draw(&s->rng) < r->threshold)) {
		hit = w->duplicated = duplicate(skb, dir);
	}
	if (hit)
		VC_COUNT(s, dir, hit);
	return 0;
}

static __always_inline int handle(struct __sk_buff *skb, __u32 dir)
{
	__u64 ifindex = skb->ifindex;
	__u64 *mask;
	struct veth_walk w = { .ifindex = ifindex, .skb = skb, .dir = dir };

	if (skb->tc_index == VC_VETH_CLONE_TAG) {
		skb->tc_index = 0;
		return TC_ACT_UNSPEC_;
	}
	mask = bpf_map_lookup_elem(&veth_slots, &ifindex);
	if (!mask || !*mask)
		return TC_ACT_UNSPEC_;
	w.mask = *mask;
	if (skb->protocol == bpf_htons(ETH_P_IP_) || skb->protocol == bpf_htons(ETH_P_IPV6_))
		vc_parse_ip(skb, ETH_HLEN_, &w.p, true);
	bpf_loop(vc_slot_span(w.mask), veth_slot, &w, 0);
	return TC_ACT_UNSPEC_;
}

/* Host-side ingress: what the container sends. */
SEC("tc")
int vc_veth_ingress(struct __sk_buff *skb)
{
	return handle(skb, VC_PKT_EGRESS);
}

/* Host-side egress: what the container receives. */
SEC("tc")
int vc_veth_egress(struct __sk_buff *skb)
{
	return handle(skb, VC_PKT_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
