/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The rule of the packet programs (packet-drop.bpf.c on cgroup_skb, veth.bpf.c
 * on TCX) and the IPv4 parse and match they share. */
#ifndef VC_PACKET_H
#define VC_PACKET_H

#include "common.h"

/* rule.flags: the directions it applies to (in the container's view) and what a hit does. */
enum vc_pkt_flags {
	VC_PKT_INGRESS = 1u,
	VC_PKT_EGRESS = 2u,
	VC_PKT_ALL = 4u,        /* act on every matching packet, no random draw */
	VC_PKT_CORRUPT = 8u,    /* veth: flip one payload byte; checksums are not fixed */
	VC_PKT_DUPLICATE = 16u, /* veth: send a copy of the packet on the same way */
};

struct vc_pkt_rule {
	__u32 flags;      /* enum vc_pkt_flags */
	__u32 threshold;  /* act when the 32-bit draw is below this */
	__be32 peer_addr; /* with peer_mask */
	__be32 peer_mask; /* 0 matches every peer (and non-IPv4) */
	__u16 port;       /* 0 = any; matches source or destination port */
	__u8 protocol;    /* IPPROTO_*; 0 = any */
	__u8 pad;
	__u32 pad2;
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_pkt_flags);

#define VC_IPPROTO_TCP 6
#define VC_IPPROTO_UDP 17

struct vc_pkt {
	bool ipv4;
	__u8 protocol;
	__u32 saddr, daddr;
	__u16 sport, dport;
	__u32 payload_off, payload_len; /* bytes after the L4 header, within the IP datagram */
};

/* Reads the IPv4 header at l3 (0 on cgroup_skb, after Ethernet on tc). The
 * payload bounds cost one more load for TCP: only callers that need them ask. */
static __always_inline void vc_parse_ipv4(struct __sk_buff *skb, __u32 l3, struct vc_pkt *p,
                                          bool payload)
{
	struct iphdr iph;
	__u32 l4, end;

	__builtin_memset(p, 0, sizeof(*p));
	if (bpf_skb_load_bytes(skb, l3, &iph, sizeof(iph)) < 0 || iph.version != 4)
		return;
	p->ipv4 = true;
	p->protocol = iph.protocol;
	p->saddr = iph.saddr;
	p->daddr = iph.daddr;
	l4 = l3 + iph.ihl * 4;
	p->payload_off = l4;
	/* tot_len is 0 for BIG TCP super-packets: then the skb's length bounds it */
	end = skb->len;
	if (iph.tot_len && l3 + bpf_ntohs(iph.tot_len) < end)
		end = l3 + bpf_ntohs(iph.tot_len);
	/* Ports only for the first fragment; a later fragment is all payload. */
	if ((iph.protocol == VC_IPPROTO_TCP || iph.protocol == VC_IPPROTO_UDP) &&
	    !(iph.frag_off & bpf_htons(0x1fff))) {
		__be16 ports[2];
		__u8 doff;

		if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) == 0) {
			p->sport = bpf_ntohs(ports[0]);
			p->dport = bpf_ntohs(ports[1]);
		}
		if (!payload)
			return;
		if (iph.protocol == VC_IPPROTO_UDP)
			p->payload_off = l4 + 8;
		else if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1) == 0)
			p->payload_off = l4 + (doff >> 4) * 4;
		else
			p->payload_off = end;
	}
	p->payload_len = end > p->payload_off ? end - p->payload_off : 0;
}

/* dir: VC_PKT_INGRESS or VC_PKT_EGRESS, in the container's view. */
static __always_inline bool vc_pkt_matches(const struct vc_pkt_rule *r, const struct vc_pkt *p,
                                           __u32 dir)
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
		__u32 remote = dir == VC_PKT_EGRESS ? p->daddr : p->saddr;
		if ((remote & r->peer_mask) != r->peer_addr)
			return false;
	}
	return true;
}

/* Counts one packet in a slot's stats: field `ingress_<name>` or `egress_<name>`
 * by the direction (in the container's view). */
#define VC_COUNT(s, dir, name)                                                                     \
	__sync_fetch_and_add((dir) == VC_PKT_EGRESS ? &(s)->egress_##name : &(s)->ingress_##name, 1)

/* A packet program's slot loop step: the stats of slot `slot` of `id` (a cgroup
 * id or an ifindex) when the slot is in use and its rule matches the packet
 * (its rule in *rule), or NULL. `rules` and `stats` are the program's maps. */
static __always_inline void *vc_slot_matching(void *rules, void *stats, __u64 id, __u32 mask,
                                              __u32 slot, const struct vc_pkt *p, __u32 dir,
                                              struct vc_pkt_rule **rule)
{
	struct vc_slot_key key = { .cgroup_id = id, .slot = slot };
	void *s;

	if (!(mask & (1u << slot)))
		return NULL;
	*rule = bpf_map_lookup_elem(rules, &key);
	s = bpf_map_lookup_elem(stats, &key);
	if (!*rule || !s || !vc_pkt_matches(*rule, p, dir))
		return NULL;
	return s;
}
#endif

#endif
