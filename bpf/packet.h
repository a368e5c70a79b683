/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The rule of the packet programs (packet-drop.bpf.c on cgroup_skb, veth.bpf.c
 * on TCX) and the IPv4 / IPv6 parse and match they share. */
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

/* rule.family: which addresses peer_addr / peer_mask hold. */
enum vc_family {
	VC_FAMILY_ANY = 0, /* every peer, and packets that are not IP */
	VC_FAMILY_IPV4 = 4,
	VC_FAMILY_IPV6 = 6,
};

struct vc_pkt_rule {
	__u32 flags;     /* enum vc_pkt_flags */
	__u32 threshold; /* act when the 32-bit draw is below this */
	__u16 port;      /* 0 = any; matches source or destination port */
	__u8 protocol;   /* IPPROTO_*; 0 = any */
	__u8 family;     /* enum vc_family */
	__u32 pad;
	/* The peer, network order, compared under peer_mask: an IPv4 address in
	 * word 0, an IPv6 address in all four. */
	__be32 peer_addr[4];
	__be32 peer_mask[4];
};

#ifdef __bpf__
VC_EXPORT_ENUM(vc_pkt_flags);
VC_EXPORT_ENUM(vc_family);

#define VC_IPPROTO_TCP 6
#define VC_IPPROTO_UDP 17

struct vc_pkt {
	__u8 family; /* enum vc_family: VC_FAMILY_ANY when not IP */
	__u8 protocol;
	__u16 sport, dport;
	__be32 saddr[4], daddr[4];      /* IPv4 in word 0 */
	__u32 payload_off, payload_len; /* bytes after the L4 header, within the IP datagram */
};

/* The ports at l4 and, when asked, where the payload starts (one more load for TCP). */
static __always_inline void vc_parse_l4(struct __sk_buff *skb, __u32 l4, __u32 end,
                                        struct vc_pkt *p, bool payload)
{
	__be16 ports[2];
	__u8 doff;

	p->payload_off = l4;
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) == 0) {
		p->sport = bpf_ntohs(ports[0]);
		p->dport = bpf_ntohs(ports[1]);
	}
	if (!payload)
		return;
	if (p->protocol == VC_IPPROTO_UDP)
		p->payload_off = l4 + 8;
	else if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1) == 0)
		p->payload_off = l4 + (doff >> 4) * 4;
	else
		p->payload_off = end;
}

static __always_inline void vc_parse_ipv4(struct __sk_buff *skb, __u32 l3, struct vc_pkt *p,
                                          bool payload)
{
	struct iphdr iph;
	__u32 l4, end;

	if (bpf_skb_load_bytes(skb, l3, &iph, sizeof(iph)) < 0 || iph.version != 4)
		return;
	p->family = VC_FAMILY_IPV4;
	p->protocol = iph.protocol;
	p->saddr[0] = iph.saddr;
	p->daddr[0] = iph.daddr;
	l4 = l3 + iph.ihl * 4;
	p->payload_off = l4;
	/* tot_len is 0 for BIG TCP super-packets: then the skb's length bounds it */
	end = skb->len;
	if (iph.tot_len && l3 + bpf_ntohs(iph.tot_len) < end)
		end = l3 + bpf_ntohs(iph.tot_len);
	/* Ports only for the first fragment; a later fragment is all payload. */
	if ((iph.protocol == VC_IPPROTO_TCP || iph.protocol == VC_IPPROTO_UDP) &&
	    !(iph.frag_off & bpf_htons(0x1fff)))
		vc_parse_l4(skb, l4, end, p, payload);
	p->payload_len = end > p->payload_off ? end - p->payload_off : 0;
}

#define VC_IPV6_HOPOPTS 0
#define VC_IPV6_ROUTING 43
#define VC_IPV6_FRAGMENT 44
#define VC_IPV6_DSTOPTS 60

/* The IPv6 header, then up to four extension headers (hop-by-hop, routing,
 * destination options, fragment) to reach TCP or UDP. */
static __always_inline void vc_parse_ipv6(struct __sk_buff *skb, __u32 l3, struct vc_pkt *p,
                                          bool payload)
{
	struct ipv6hdr ip6;
	__u32 l4 = l3 + sizeof(ip6), end;
	__u8 next;

	if (bpf_skb_load_bytes(skb, l3, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
		return;
	p->family = VC_FAMILY_IPV6;
	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	end = skb->len;
	/* payload_len is 0 for jumbograms and BIG TCP: then the skb's length bounds it */
	if (ip6.payload_len && l4 + bpf_ntohs(ip6.payload_len) < end)
		end = l4 + bpf_ntohs(ip6.payload_len);
	next = ip6.nexthdr;
	for (int i = 0; i < 4; i++) {
		__u8 ext[2]; /* next header, length */

		if (next != VC_IPV6_HOPOPTS && next != VC_IPV6_ROUTING && next != VC_IPV6_DSTOPTS &&
		    next != VC_IPV6_FRAGMENT)
			break;
		if (bpf_skb_load_bytes(skb, l4, ext, sizeof(ext)) < 0)
			return;
		if (next == VC_IPV6_FRAGMENT) {
			__be16 frag;

			/* A later fragment is all payload, with no ports. */
			if (bpf_skb_load_bytes(skb, l4 + 2, &frag, sizeof(frag)) < 0 ||
			    (frag & bpf_htons(0xfff8))) {
				p->protocol = ext[0];
				p->payload_off = l4 + 8;
				p->payload_len = end > p->payload_off ? end - p->payload_off : 0;
				return;
			}
			l4 += 8;
		} else {
			l4 += (ext[1] + 1) * 8;
		}
		next = ext[0];
	}
	p->protocol = next;
	p->payload_off = l4;
	if (next == VC_IPPROTO_TCP || next == VC_IPPROTO_UDP)
		vc_parse_l4(skb, l4, end, p, payload);
	p->payload_len = end > p->payload_off ? end - p->payload_off : 0;
}

/* Reads the IP header at l3 (0 on cgroup_skb, after Ethernet on tc), IPv4 or
 * IPv6 by its version; anything else is left with family VC_FAMILY_ANY. */
static __always_inline void vc_parse_ip(struct __sk_buff *skb, __u32 l3, struct vc_pkt *p,
                                        bool payload)
{
	__u8 v;

	__builtin_memset(p, 0, sizeof(*p));
	if (bpf_skb_load_bytes(skb, l3, &v, 1) < 0)
		return;
	if (v >> 4 == 4)
		vc_parse_ipv4(skb, l3, p, payload);
	else if (v >> 4 == 6)
		vc_parse_ipv6(skb, l3, p, payload);
}

/* dir: VC_PKT_INGRESS or VC_PKT_EGRESS, in the container's view. */
static __always_inline bool vc_pkt_matches(const struct vc_pkt_rule *r, const struct vc_pkt *p,
                                           __u32 dir)
{
	const __be32 *remote;

	if (!(r->flags & dir))
		return false;
	if (p->family == VC_FAMILY_ANY)
		return r->family == VC_FAMILY_ANY && r->port == 0 && r->protocol == 0;
	if (r->protocol && r->protocol != p->protocol)
		return false;
	if (r->port && r->port != p->sport && r->port != p->dport)
		return false;
	if (r->family == VC_FAMILY_ANY)
		return true;
	if (r->family != p->family)
		return false;
	remote = dir == VC_PKT_EGRESS ? p->daddr : p->saddr;
	if ((remote[0] & r->peer_mask[0]) != r->peer_addr[0])
		return false;
	if (r->family == VC_FAMILY_IPV4)
		return true;
	return (remote[1] & r->peer_mask[1]) == r->peer_addr[1] &&
	       (remote[2] & r->peer_mask[2]) == r->peer_addr[2] &&
	       (remote[3] & r->peer_mask[3]) == r->peer_addr[3];
}

/* Counts one packet in a slot's stats: field `ingress_<name>` or `egress_<name>`
 * by the direction (in the container's view). */
#define VC_COUNT(s, dir, name)                                                                     \
	__sync_fetch_and_add((dir) == VC_PKT_EGRESS ? &(s)->egress_##name : &(s)->ingress_##name, 1)

/* A packet program's slot loop step: the stats of slot `slot` of `id` (a cgroup
 * id or an ifindex) when the slot is in use and its rule matches the packet
 * (its rule in *rule), or NULL. `rules` and `stats` are the program's maps. */
static __always_inline void *vc_slot_matching(void *rules, void *stats, __u64 id, __u64 mask,
                                              __u32 slot, const struct vc_pkt *p, __u32 dir,
                                              struct vc_pkt_rule **rule)
{
	struct vc_slot_key key = { .cgroup_id = id, .slot = slot };
	void *s;

	if (!vc_slot_used(mask, slot))
		return NULL;
	*rule = bpf_map_lookup_elem(rules, &key);
	s = bpf_map_lookup_elem(stats, &key);
	if (!*rule || !s || !vc_pkt_matches(*rule, p, dir))
		return NULL;
	return s;
}
#endif

#endif
