// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The match of the packet data path's kept iptables rules (xt_bpf, run as a
 * socket filter on each packet the rule sees, from its IP header): does this
 * packet belong to the fault in slot `vc_qm_slot_index`? One object is loaded
 * per slot with that constant set; all share the maps. The rules of a netns
 * stay while it has faults (src/targets/queue-slots.ts), so injecting a fault
 * is filling its slot, and reverting it clearing the flag: no iptables commit.
 * The same slots hold inbound proxies' REDIRECTs (nat PREROUTING, vc_qm_redirect). */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "queue-match.h"

VC_EXPORT_ENUM(vc_qm_limits);
VC_EXPORT_ENUM(vc_qm_flags);

const volatile __u32 vc_qm_slot_index = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VC_QM_SLOTS);
	__type(key, __u32);
	__type(value, struct vc_qm_slot);
} qm_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VC_QM_SLOTS);
	__type(key, __u32);
	__type(value, struct vc_qm_group);
} qm_groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vc_qm_port_key);
	__type(value, __u8);
} qm_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct vc_qm_flow_key);
	__type(value, __u8);
} qm_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct vc_qm_proxy_key);
	__type(value, __u8);
} qm_proxies SEC(".maps");

struct qm_packet {
	__u8 local[16];
	__u8 remote[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 flags; /* TCP flags byte */
};

/* The TCP packet's addresses and ports as the target sees them; false if it is not TCP (or an IPv6
 * extension header comes first). */
static __always_inline bool qm_parse(struct __sk_buff *skb, bool egress, struct qm_packet *p)
{
	__u8 first;
	__u8 src[16] = {}, dst[16] = {};
	__u32 off;

	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return false;
	if ((first >> 4) == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP)
			return false;
		src[10] = src[11] = dst[10] = dst[11] = 0xff;
		__builtin_memcpy(&src[12], &ip.saddr, 4);
		__builtin_memcpy(&dst[12], &ip.daddr, 4);
		off = (__u32)ip.ihl * 4;
	} else if ((first >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) || ip6.nexthdr != IPPROTO_TCP)
			return false;
		__builtin_memcpy(src, &ip6.saddr, 16);
		__builtin_memcpy(dst, &ip6.daddr, 16);
		off = sizeof(ip6);
	} else {
		return false;
	}
	__u8 th[14];

	if (off > 60 || bpf_skb_load_bytes(skb, off, th, sizeof(th)))
		return false;
	__u16 sport = ((__u16)th[0] << 8) | th[1], dport = ((__u16)th[2] << 8) | th[3];

	p->flags = th[13];
	if (egress) {
		__builtin_memcpy(p->local, src, 16);
		__builtin_memcpy(p->remote, dst, 16);
		p->local_port = sport;
		p->remote_port = dport;
	} else {
		__builtin_memcpy(p->local, dst, 16);
		__builtin_memcpy(p->remote, src, 16);
		p->local_port = dport;
		p->remote_port = sport;
	}
	return true;
}

/* addr in net under mask: four 32-bit words, no branch per byte (a loop over 16 bytes per
 * peer made the verifier walk 130k instructions). */
static __always_inline bool qm_in_net(const __u8 *addr, const __u8 *net, const __u8 *mask)
{
	__u32 a[4], n[4], m[4];

	__builtin_memcpy(a, addr, 16);
	__builtin_memcpy(n, net, 16);
	__builtin_memcpy(m, mask, 16);
	return !(((a[0] ^ n[0]) & m[0]) | ((a[1] ^ n[1]) & m[1]) | ((a[2] ^ n[2]) & m[2]) |
	         ((a[3] ^ n[3]) & m[3]));
}

static __always_inline bool qm_peer_ok(struct vc_qm_slot *s, const __u8 *remote)
{
	__u32 n = s->npeers;

	if (n == 0)
		return true;
	for (int i = 0; i < VC_QM_PEERS; i++) {
		if ((__u32)i >= n)
			break;
		if (qm_in_net(remote, &s->peer_addr[i * 16], &s->peer_mask[i * 16]))
			return true;
	}
	return false;
}

/* Does the fault in `slot` take packet p? A global function: the verifier checks it once, not
 * at each call (two per program, one in a loop). how: bit 0 egress, bit 1 redirect. */
__attribute__((noinline)) int qm_takes(__u32 slot, const struct qm_packet *p, __u32 how)
{
	struct vc_qm_slot *s = bpf_map_lookup_elem(&qm_slots, &slot);
	bool egress = how & 1, redirect = how & 2;

	if (!p || !s || !(s->flags & VC_QM_ACTIVE))
		return false;
	if (!(s->flags & VC_QM_REDIRECT) != !redirect)
		return false;
	if (!egress && !redirect && !(s->flags & VC_QM_BOTH_HOOKS))
		return false;
	if ((s->flags & VC_QM_FIN_ONLY) && !(p->flags & 0x01))
		return false;
	/* A REDIRECT takes a connection by its SYN: nat sees no other packet of it. */
	if (redirect && (p->flags & 0x12) != 0x02)
		return false;

	struct vc_qm_proxy_key pk = { .slot = slot, .port = p->remote_port };

	__builtin_memcpy(pk.addr, p->remote, 16);
	if (bpf_map_lookup_elem(&qm_proxies, &pk))
		return true;
	__builtin_memset(pk.addr, 0, 16);
	pk.port = p->local_port;
	if (bpf_map_lookup_elem(&qm_proxies, &pk) && qm_peer_ok(s, p->remote))
		return true;

	struct vc_qm_port_key lk = { .slot = slot, .gen = s->gen, .port = p->local_port };
	bool listening = bpf_map_lookup_elem(&qm_ports, &lk) != NULL;
	bool has_port = s->flags & VC_QM_PORT;

	if (s->flags & VC_QM_INBOUND) {
		if ((has_port ? p->local_port == s->port : listening) && qm_peer_ok(s, p->remote))
			return true;
	}
	if (s->flags & VC_QM_OUTBOUND_ALL) {
		if (!listening && (!has_port || p->remote_port == s->port) &&
		    qm_peer_ok(s, p->remote))
			return true;
	}
	if (s->flags & VC_QM_OUTBOUND_LISTED) {
		struct vc_qm_flow_key fk = { .slot = slot,
			                     .local_port = p->local_port,
			                     .remote_port = p->remote_port };

		__builtin_memcpy(fk.local, p->local, 16);
		__builtin_memcpy(fk.remote, p->remote, 16);
		if (bpf_map_lookup_elem(&qm_flows, &fk))
			return true;
	}
	return false;
}

struct qm_walk {
	struct qm_packet p;
	__u32 me;
	__u32 group;
	bool egress;
	bool redirect;
	bool decided;
	bool take;
};

/* One slot of the group, newest first: the first that takes the packet gets it. */
static long qm_walk_one(__u32 i, struct qm_walk *w)
{
	__u32 group = w->group;
	struct vc_qm_group *g;

	if (i >= VC_QM_GROUP)
		return 1;
	g = bpf_map_lookup_elem(&qm_groups, &group);
	if (!g)
		return 1;
	__u32 idx = i;

	/* The mask after an opaque copy: the compiler would drop it (i < VC_QM_GROUP is known),
	 * and the verifier loses that bound through the 32-bit copy it makes instead. */
	asm volatile("" : "+r"(idx));
	idx &= VC_QM_GROUP - 1;
	__u32 cand = g->slots[idx];
	__u32 how = (w->egress ? 1 : 0) | (w->redirect ? 2 : 0);

	if (cand == w->me) {
		w->take = qm_takes(cand, &w->p, how);
		w->decided = true;
		return 1;
	}
	if (qm_takes(cand, &w->p, how)) {
		w->take = false;
		w->decided = true;
		return 1;
	}
	return 0;
}

static __always_inline int qm_match(struct __sk_buff *skb, bool egress, bool redirect)
{
	__u32 slot = vc_qm_slot_index;
	struct vc_qm_slot *s = bpf_map_lookup_elem(&qm_slots, &slot);
	struct qm_walk w = { .me = slot, .egress = egress, .redirect = redirect };

	if (!s || !(s->flags & VC_QM_ACTIVE))
		return 0;
	if (!qm_parse(skb, egress, &w.p))
		return 0;
	/* A SYN coming to the target: it listens on that port (if it started after the inject too).
	 * Not for a REDIRECT: in PREROUTING a SYN to a closed port is not yet refused, and taking
	 * it would turn the client's "refused" into a reset from our proxy. */
	if (!egress && !redirect && (w.p.flags & 0x12) == 0x02) {
		struct vc_qm_port_key learn = { .slot = slot,
			                        .gen = s->gen,
			                        .port = w.p.local_port };
		__u8 one = 1;

		bpf_map_update_elem(&qm_ports, &learn, &one, BPF_NOEXIST);
	}
	w.group = s->group;
	struct vc_qm_group *g = bpf_map_lookup_elem(&qm_groups, &w.group);

	if (g && g->n > 0)
		bpf_loop(g->n < VC_QM_GROUP ? g->n : VC_QM_GROUP, qm_walk_one, &w, 0);
	/* Not in its group's list (a moment before or after it is): as if it were alone. */
	if (!w.decided)
		w.take = qm_takes(slot, &w.p, (egress ? 1 : 0) | (redirect ? 2 : 0));
	if (!w.take)
		return 0;
	__sync_fetch_and_add(&s->matched, 1);
	return 1;
}

SEC("socket")
int vc_qm_output(struct __sk_buff *skb)
{
	return qm_match(skb, true, false);
}

SEC("socket")
int vc_qm_input(struct __sk_buff *skb)
{
	return qm_match(skb, false, false);
}

/* nat PREROUTING: a new connection to the target that an inbound proxy slot takes. */
SEC("socket")
int vc_qm_redirect(struct __sk_buff *skb)
{
	return qm_match(skb, false, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
