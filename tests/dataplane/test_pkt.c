/* test_pkt.c: unit tests of the L2-L4 parser, reply builders and checksum, against an independent frame encoder. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "dds_dataplane.h"
#include "pkt_int.h"

enum tf_kind { TF_ARP, TF_ICMP, TF_UDP };

/* A test frame described field by field; tf_encode() writes it with correct checksums unless a
 * bad_* flag asks otherwise. This encoder shares no code with dataplane/. */
struct tf {
	enum tf_kind kind;
	uint8_t dst_mac[6], src_mac[6];
	uint16_t ethertype;
	uint8_t version, ihl, proto, ttl;
	int total_len_delta; /* added to the true IP total length */
	uint16_t frag;       /* flags + offset field */
	uint8_t src_ip[4], dst_ip[4];
	int bad_ip_csum;
	uint16_t sport, dport;
	int ulen_delta;
	int bad_udp_csum, zero_udp_csum;
	uint8_t icmp_type, icmp_code;
	int bad_icmp_csum;
	uint16_t htype, ptype, op;
	uint8_t hlen, plen;
	uint8_t arp_sip[4], arp_tip[4];
	size_t payload_len;
	size_t pad_to;   /* Ethernet padding up to this frame length */
	size_t truncate; /* if non-zero, the frame is cut to this length */
};

static const uint8_t my_mac[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 2};
static const uint8_t my_ip[4] = {10, 99, 0, 1};
static const uint8_t peer_ip[4] = {10, 99, 0, 2};
enum { MY_PORT = 9000, PEER_PORT = 40000 };

static struct dds_iface me(void)
{
	struct dds_iface i;

	memset(&i, 0, sizeof(i));
	memcpy(i.mac, my_mac, 6);
	memcpy(&i.ip, my_ip, 4);
	i.udp_port = (uint16_t)(((MY_PORT & 0xff) << 8) | (MY_PORT >> 8)); /* to network order */
	i.verify_udp_csum = true;
	return i;
}

/* RFC 1071 the slow way: big-endian 16-bit words, 32-bit sum, fold, complement. */
static uint16_t naive_csum(const uint8_t *b, size_t n, uint32_t sum)
{
	for (size_t i = 0; i < n; i += 2)
		sum += (uint32_t)(b[i] << 8) + (i + 1 < n ? b[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)(p[0] << 8 | p[1]);
}

static struct tf tf_base(enum tf_kind kind)
{
	struct tf t;

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	memcpy(t.dst_mac, my_mac, 6);
	memcpy(t.src_mac, peer_mac, 6);
	t.ethertype = kind == TF_ARP ? 0x0806 : 0x0800;
	t.version = 4;
	t.ihl = 5;
	t.ttl = 64;
	t.proto = kind == TF_UDP ? 17 : 1;
	t.frag = 0x4000;
	memcpy(t.src_ip, peer_ip, 4);
	memcpy(t.dst_ip, my_ip, 4);
	t.sport = PEER_PORT;
	t.dport = MY_PORT;
	t.icmp_type = 8;
	t.htype = 1;
	t.ptype = 0x0800;
	t.op = 1;
	t.hlen = 6;
	t.plen = 4;
	memcpy(t.arp_sip, peer_ip, 4);
	memcpy(t.arp_tip, my_ip, 4);
	t.payload_len = 37;
	return t;
}

static size_t encode_l4(const struct tf *t, uint8_t *l4, const uint8_t *ip)
{
	size_t n;

	for (size_t i = 0; i < t->payload_len; i++)
		l4[8 + i] = (uint8_t)(i * 7 + 3);
	n = 8 + t->payload_len;
	if (t->kind == TF_UDP) {
		uint32_t pseudo = (uint32_t)get16(ip + 12) + get16(ip + 14) + get16(ip + 16) +
				  get16(ip + 18) + 17 + (uint32_t)n;
		uint16_t c;

		put16(l4, t->sport);
		put16(l4 + 2, t->dport);
		put16(l4 + 4, (unsigned)((int)n + t->ulen_delta));
		put16(l4 + 6, 0);
		c = naive_csum(l4, n, pseudo);
		c = c ? c : 0xffff;
		put16(l4 + 6, t->zero_udp_csum ? 0 : t->bad_udp_csum ? c ^ 0x1234u : c);
	} else {
		l4[0] = t->icmp_type;
		l4[1] = t->icmp_code;
		put16(l4 + 2, 0);
		put16(l4 + 4, 0x77);
		put16(l4 + 6, 1);
		put16(l4 + 2, naive_csum(l4, n, 0) ^ (t->bad_icmp_csum ? 0x40u : 0));
	}
	return n;
}

static size_t tf_encode(const struct tf *t, uint8_t *f)
{
	size_t len;

	memset(f, 0, 16384);
	memcpy(f, t->dst_mac, 6);
	memcpy(f + 6, t->src_mac, 6);
	put16(f + 12, t->ethertype);
	if (t->kind == TF_ARP) {
		uint8_t *a = f + 14;

		put16(a, t->htype);
		put16(a + 2, t->ptype);
		a[4] = t->hlen;
		a[5] = t->plen;
		put16(a + 6, t->op);
		memcpy(a + 8, t->src_mac, 6);
		memcpy(a + 14, t->arp_sip, 4);
		memcpy(a + 24, t->arp_tip, 4);
		len = 42;
	} else {
		uint8_t *ip = f + 14;
		size_t ihl = (size_t)t->ihl * 4, l4len;

		ip[0] = (uint8_t)(t->version << 4 | t->ihl);
		put16(ip + 6, t->frag);
		ip[8] = t->ttl;
		ip[9] = t->proto;
		memcpy(ip + 12, t->src_ip, 4);
		memcpy(ip + 16, t->dst_ip, 4);
		for (size_t i = 20; i < ihl; i++)
			ip[i] = 1; /* NOP options */
		l4len = encode_l4(t, f + 14 + (ihl < 20 ? 20 : ihl), ip);
		put16(ip + 2, (unsigned)((int)((ihl < 20 ? 20 : ihl) + l4len) + t->total_len_delta));
		put16(ip + 10, naive_csum(ip, ihl < 20 ? 20 : ihl, 0) ^ (t->bad_ip_csum ? 1u : 0));
		len = 14 + (ihl < 20 ? 20 : ihl) + l4len;
	}
	if (len < t->pad_to)
		len = t->pad_to;
	if (t->truncate)
		len = t->truncate;
	return len;
}

/* Parse from a heap copy of exactly `len` bytes, so that ASan sees any read past the frame. */
static enum dds_ctr parse_exact(const uint8_t *f, size_t len, const struct dds_iface *i,
				struct dds_pkt *p)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum dds_ctr r;

	memcpy(copy, f, len);
	r = dds_pkt_parse(copy, len, i, 0, p);
	free(copy);
	return r;
}

static uint8_t frame[16384];

START_TEST(accepts_udp_of_every_size)
{
	struct dds_iface i = me();

	for (size_t n = 0; n <= 9000; n += (n < 64 ? 1 : 97)) {
		struct tf t = tf_base(TF_UDP);
		struct dds_pkt p;
		size_t len;

		t.payload_len = n;
		t.pad_to = 60;
		len = tf_encode(&t, frame);
		ck_assert_int_eq(parse_exact(frame, len, &i, &p), DDS_CTR_rx_udp);
		ck_assert_uint_eq(p.payload_off, 42);
		ck_assert_uint_eq(p.payload_len, n);
		ck_assert_mem_eq(p.src.mac, peer_mac, 6);
		ck_assert_mem_eq(&p.src.ip, peer_ip, 4);
		ck_assert_uint_eq(get16((const uint8_t *)&p.src.port), PEER_PORT);
		for (size_t k = 0; k < n; k++)
			ck_assert_uint_eq(frame[p.payload_off + k], (uint8_t)(k * 7 + 3));
	}
}
END_TEST

/* udp_port_span: a destination is ours iff base <= port < base + max(span, 1), with no wrap
 * past 65535; every port near each range's ends is checked against that rule. */
START_TEST(udp_port_span_range)
{
	static const unsigned bases[] = {MY_PORT, 40000, 1, 65530, 65535};
	static const unsigned spans[] = {0, 1, 2, 20, 100, 65535};

	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++)
		for (size_t s = 0; s < sizeof(spans) / sizeof(spans[0]); s++) {
			struct dds_iface i = me();
			unsigned width = spans[s] ? spans[s] : 1;

			i.udp_port = (uint16_t)(((bases[b] & 0xff) << 8) | (bases[b] >> 8));
			i.udp_port_span = (uint16_t)spans[s];
			for (long d = (long)bases[b] - 3; d <= (long)bases[b] + (long)width + 3; d++) {
				long port = ((d % 65536) + 65536) % 65536; /* what 16 bits carry */
				struct tf t = tf_base(TF_UDP);
				struct dds_pkt p;
				bool ours = port >= (long)bases[b] && port < (long)bases[b] + (long)width;

				t.dport = (uint16_t)port;
				ck_assert_msg(parse_exact(frame, tf_encode(&t, frame), &i, &p) ==
					      (ours ? DDS_CTR_rx_udp : DDS_CTR_drop_udp_port),
					      "base %u span %u port %ld", bases[b], spans[s], port);
			}
		}
}
END_TEST

START_TEST(accepts_options_zero_csum_and_no_verify)
{
	struct dds_iface i = me();
	struct tf t = tf_base(TF_UDP);
	struct dds_pkt p;

	t.ihl = 15; /* 40 bytes of options */
	ck_assert_int_eq(parse_exact(frame, tf_encode(&t, frame), &i, &p), DDS_CTR_rx_udp);
	ck_assert_uint_eq(p.payload_off, 14 + 60 + 8);
	t = tf_base(TF_UDP);
	t.zero_udp_csum = 1;
	ck_assert_int_eq(parse_exact(frame, tf_encode(&t, frame), &i, &p), DDS_CTR_rx_udp);
	t.zero_udp_csum = 0;
	t.bad_udp_csum = 1;
	i.verify_udp_csum = false;
	ck_assert_int_eq(parse_exact(frame, tf_encode(&t, frame), &i, &p), DDS_CTR_rx_udp);
	t = tf_base(TF_ARP);
	memset(t.dst_mac, 0xff, 6); /* ARP requests are broadcast */
	ck_assert_int_eq(parse_exact(frame, tf_encode(&t, frame), &i, &p), DDS_CTR_rx_arp_request);
	t = tf_base(TF_ICMP);
	t.payload_len = 56;
	ck_assert_int_eq(parse_exact(frame, tf_encode(&t, frame), &i, &p), DDS_CTR_rx_icmp_echo);
}
END_TEST

/* One mutation of a valid frame and the drop it must cause. */
struct drop_case {
	const char *what;
	enum tf_kind kind;
	void (*mutate)(struct tf *t);
	enum dds_ctr want;
};

#define MUT(name, body) static void name(struct tf *t) { body; }
MUT(m_runt_eth, t->truncate = 13)
MUT(m_other_mac, t->dst_mac[5] = 9)
MUT(m_multicast_mac, t->dst_mac[0] = 0x01)
MUT(m_vlan, t->ethertype = 0x8100)
MUT(m_ipv6, t->ethertype = 0x86dd)
MUT(m_arp_runt, t->truncate = 14 + 27)
MUT(m_arp_htype, t->htype = 6)
MUT(m_arp_ptype, t->ptype = 0x86dd)
MUT(m_arp_hlen, t->hlen = 8)
MUT(m_arp_reply, t->op = 2)
MUT(m_arp_other_ip, t->arp_tip[3] = 77)
MUT(m_arp_src_zero, memset(t->arp_sip, 0, 4))
MUT(m_arp_src_bcast, memset(t->arp_sip, 255, 4))
MUT(m_ip_runt, t->truncate = 14 + 19)
MUT(m_ip_v6, t->version = 6)
MUT(m_ip_v0, t->version = 0)
MUT(m_ip_ihl_small, t->ihl = 4)
MUT(m_ip_ihl_past, t->ihl = 15; t->payload_len = 0; t->truncate = 14 + 40)
MUT(m_ip_total_short, t->total_len_delta = -(int)(8 + t->payload_len + 1))
MUT(m_ip_total_long, t->total_len_delta = 1)
MUT(m_ip_csum, t->bad_ip_csum = 1)
MUT(m_ip_src_mcast, t->src_ip[0] = 224)
MUT(m_ip_src_loop, t->src_ip[0] = 127)
MUT(m_ip_src_zero, memset(t->src_ip, 0, 4))
MUT(m_ip_dst_other, t->dst_ip[3] = 5)
MUT(m_ip_dst_bcast, memset(t->dst_ip, 255, 4))
MUT(m_ip_mf, t->frag = 0x2000)
MUT(m_ip_offset, t->frag = 0x0010)
MUT(m_ip_tcp, t->proto = 6)
MUT(m_icmp_runt, t->payload_len = 0; t->total_len_delta = -1)
MUT(m_icmp_csum, t->bad_icmp_csum = 1)
MUT(m_icmp_reply, t->icmp_type = 0)
MUT(m_icmp_code, t->icmp_code = 1)
MUT(m_udp_runt, t->payload_len = 0; t->total_len_delta = -1)
MUT(m_udp_len_small, t->ulen_delta = -(int)(t->payload_len + 1))
MUT(m_udp_len_past, t->ulen_delta = 1)
MUT(m_udp_csum, t->bad_udp_csum = 1)
MUT(m_udp_other_port, t->dport = MY_PORT + 1)
MUT(m_udp_src_zero, t->sport = 0)

static const struct drop_case drop_cases[] = {
	{"runt Ethernet", TF_UDP, m_runt_eth, DDS_CTR_drop_eth_runt},
	{"other MAC", TF_UDP, m_other_mac, DDS_CTR_drop_eth_not_for_us},
	{"multicast MAC", TF_UDP, m_multicast_mac, DDS_CTR_drop_eth_not_for_us},
	{"VLAN tag", TF_UDP, m_vlan, DDS_CTR_drop_eth_type},
	{"IPv6", TF_UDP, m_ipv6, DDS_CTR_drop_eth_type},
	{"runt ARP", TF_ARP, m_arp_runt, DDS_CTR_drop_arp_runt},
	{"ARP htype", TF_ARP, m_arp_htype, DDS_CTR_drop_arp_format},
	{"ARP ptype", TF_ARP, m_arp_ptype, DDS_CTR_drop_arp_format},
	{"ARP hlen", TF_ARP, m_arp_hlen, DDS_CTR_drop_arp_format},
	{"ARP reply", TF_ARP, m_arp_reply, DDS_CTR_drop_arp_op},
	{"ARP for other IP", TF_ARP, m_arp_other_ip, DDS_CTR_drop_arp_not_for_us},
	{"ARP sender 0.0.0.0", TF_ARP, m_arp_src_zero, DDS_CTR_drop_arp_src},
	{"ARP sender broadcast", TF_ARP, m_arp_src_bcast, DDS_CTR_drop_arp_src},
	{"runt IPv4", TF_UDP, m_ip_runt, DDS_CTR_drop_ip_runt},
	{"IP version 6", TF_UDP, m_ip_v6, DDS_CTR_drop_ip_version},
	{"IP version 0", TF_UDP, m_ip_v0, DDS_CTR_drop_ip_version},
	{"IHL 4", TF_UDP, m_ip_ihl_small, DDS_CTR_drop_ip_ihl},
	{"IHL past frame", TF_UDP, m_ip_ihl_past, DDS_CTR_drop_ip_ihl},
	{"total length below header", TF_UDP, m_ip_total_short, DDS_CTR_drop_ip_total_len},
	{"total length past frame", TF_UDP, m_ip_total_long, DDS_CTR_drop_ip_total_len},
	{"IP checksum", TF_UDP, m_ip_csum, DDS_CTR_drop_ip_checksum},
	{"IP source multicast", TF_UDP, m_ip_src_mcast, DDS_CTR_drop_ip_src},
	{"IP source loopback", TF_UDP, m_ip_src_loop, DDS_CTR_drop_ip_src},
	{"IP source zero", TF_UDP, m_ip_src_zero, DDS_CTR_drop_ip_src},
	{"IP to another host", TF_UDP, m_ip_dst_other, DDS_CTR_drop_ip_not_for_us},
	{"IP broadcast", TF_UDP, m_ip_dst_bcast, DDS_CTR_drop_ip_not_for_us},
	{"IP more fragments", TF_UDP, m_ip_mf, DDS_CTR_drop_ip_fragment},
	{"IP fragment offset", TF_UDP, m_ip_offset, DDS_CTR_drop_ip_fragment},
	{"TCP", TF_UDP, m_ip_tcp, DDS_CTR_drop_ip_proto},
	{"runt ICMP", TF_ICMP, m_icmp_runt, DDS_CTR_drop_icmp_runt},
	{"ICMP checksum", TF_ICMP, m_icmp_csum, DDS_CTR_drop_icmp_checksum},
	{"ICMP echo reply", TF_ICMP, m_icmp_reply, DDS_CTR_drop_icmp_type},
	{"ICMP code 1", TF_ICMP, m_icmp_code, DDS_CTR_drop_icmp_type},
	{"runt UDP", TF_UDP, m_udp_runt, DDS_CTR_drop_udp_runt},
	{"UDP length below 8", TF_UDP, m_udp_len_small, DDS_CTR_drop_udp_len},
	{"UDP length past IP", TF_UDP, m_udp_len_past, DDS_CTR_drop_udp_len},
	{"UDP checksum", TF_UDP, m_udp_csum, DDS_CTR_drop_udp_checksum},
	{"UDP other port", TF_UDP, m_udp_other_port, DDS_CTR_drop_udp_port},
	{"UDP source port 0", TF_UDP, m_udp_src_zero, DDS_CTR_drop_udp_port},
};

START_TEST(every_parse_drop_reason)
{
	struct dds_iface i = me();
	bool reached[DDS_CTR__COUNT] = {false};

	for (size_t k = 0; k < sizeof(drop_cases) / sizeof(drop_cases[0]); k++) {
		const struct drop_case *c = &drop_cases[k];
		struct tf t = tf_base(c->kind);
		struct dds_pkt p;
		enum dds_ctr got;

		c->mutate(&t);
		got = parse_exact(frame, tf_encode(&t, frame), &i, &p);
		ck_assert_msg(got == c->want, "%s: got %s, want %s", c->what, dds_ctr_name(got),
			      dds_ctr_name(c->want));
		reached[got] = true;
	}
	/* The parser's reasons run from drop_eth_runt to the end; the ones before are tx/mbuf. */
	for (int c = DDS_CTR_drop_eth_runt; c < DDS_CTR__COUNT; c++)
		ck_assert_msg(reached[c], "no case reaches %s", dds_ctr_name(c));
}
END_TEST

START_TEST(every_truncation_is_dropped)
{
	struct dds_iface i = me();
	enum tf_kind kinds[] = {TF_ARP, TF_ICMP, TF_UDP};

	for (size_t k = 0; k < 3; k++) {
		struct tf t = tf_base(kinds[k]);
		size_t full = tf_encode(&t, frame);

		for (size_t len = 0; len < full; len++) {
			struct dds_pkt p;

			ck_assert(dds_ctr_is_drop(parse_exact(frame, len, &i, &p)));
		}
	}
}
END_TEST

START_TEST(arp_reply_is_correct)
{
	struct dds_iface i = me();
	struct tf t = tf_base(TF_ARP);
	struct dds_pkt p;
	size_t len;

	memset(t.dst_mac, 0xff, 6);
	len = tf_encode(&t, frame);
	ck_assert_int_eq(dds_pkt_parse(frame, len, &i, 0, &p), DDS_CTR_rx_arp_request);
	ck_assert_uint_eq(dds_pkt_arp_reply(frame, &i), 42);
	ck_assert_mem_eq(frame, peer_mac, 6);
	ck_assert_mem_eq(frame + 6, my_mac, 6);
	ck_assert_uint_eq(get16(frame + 12), 0x0806);
	ck_assert_uint_eq(get16(frame + 14), 1);
	ck_assert_uint_eq(get16(frame + 16), 0x0800);
	ck_assert_uint_eq(get16(frame + 20), 2);
	ck_assert_mem_eq(frame + 22, my_mac, 6);
	ck_assert_mem_eq(frame + 28, my_ip, 4);
	ck_assert_mem_eq(frame + 32, peer_mac, 6);
	ck_assert_mem_eq(frame + 38, peer_ip, 4);
}
END_TEST

START_TEST(icmp_reply_is_correct)
{
	struct dds_iface i = me();

	for (int ihl = 5; ihl <= 15; ihl += 10) {
		struct tf t = tf_base(TF_ICMP);
		uint8_t req[2048];
		struct dds_pkt p;
		size_t len, rlen, l4;

		t.ihl = (uint8_t)ihl;
		t.payload_len = 1000;
		len = tf_encode(&t, frame);
		memcpy(req, frame, len);
		ck_assert_int_eq(dds_pkt_parse(frame, len, &i, 0, &p), DDS_CTR_rx_icmp_echo);
		l4 = p.l4_len;
		rlen = dds_pkt_icmp_echo_reply(frame, &p, &i);
		ck_assert_uint_eq(rlen, 14 + 20 + l4);
		ck_assert_mem_eq(frame, peer_mac, 6);
		ck_assert_mem_eq(frame + 6, my_mac, 6);
		ck_assert_uint_eq(frame[14], 0x45);
		ck_assert_uint_eq(get16(frame + 16), 20 + l4);
		ck_assert_uint_eq(frame[23], 1);
		ck_assert_mem_eq(frame + 26, my_ip, 4);
		ck_assert_mem_eq(frame + 30, peer_ip, 4);
		ck_assert_uint_eq(naive_csum(frame + 14, 20, 0), 0);
		ck_assert_uint_eq(frame[34], 0);
		ck_assert_uint_eq(naive_csum(frame + 34, l4, 0), 0);
		/* identifier, sequence and data echoed unchanged */
		ck_assert_mem_eq(frame + 38, req + 14 + ihl * 4 + 4, l4 - 4);
	}
}
END_TEST

START_TEST(udp_build_round_trips)
{
	struct dds_iface i = me();

	for (size_t n = 0; n < 9000; n += 331) {
		struct dds_iface peer = me();
		struct dds_peer to, back;
		struct dds_pkt p;
		size_t len;

		memcpy(to.mac, peer_mac, 6);
		memcpy(&to.ip, peer_ip, 4);
		to.port = (uint16_t)(((PEER_PORT & 0xff) << 8) | (PEER_PORT >> 8));
		for (size_t k = 0; k < n; k++)
			frame[42 + k] = (uint8_t)(k ^ 0x5a);
		len = dds_pkt_udp_build(frame, n, &i, &to, 7, true);
		ck_assert_uint_eq(len, 42 + n);
		/* The peer's view: parse with the peer as "me" and check against the naive sum. */
		memcpy(peer.mac, peer_mac, 6);
		memcpy(&peer.ip, peer_ip, 4);
		peer.udp_port = to.port;
		ck_assert_int_eq(parse_exact(frame, len, &peer, &p), DDS_CTR_rx_udp);
		ck_assert_uint_eq(p.payload_len, n);
		back = p.src;
		ck_assert_mem_eq(back.mac, my_mac, 6);
		ck_assert_uint_eq(back.port, i.udp_port);
		ck_assert_uint_eq(naive_csum(frame + 14, 20, 0), 0);
		ck_assert_uint_ne(get16(frame + 40), 0);
		ck_assert_uint_eq(get16(frame + 20) & 0x4000, 0x4000);
		for (size_t k = 0; k < n; k++)
			ck_assert_uint_eq(frame[42 + k], (uint8_t)(k ^ 0x5a));
	}
	ck_assert_uint_eq(dds_pkt_udp_build(frame, 65536 - 28, &i, &(struct dds_peer){0}, 0, false),
			  0);
}
END_TEST

START_TEST(csum_matches_naive)
{
	static uint8_t buf[10000];

	srand(7);
	for (int k = 0; k < 2000; k++) {
		size_t off = (size_t)rand() % 8, n = (size_t)rand() % 9000;

		for (size_t j = 0; j < n; j++)
			buf[off + j] = (uint8_t)rand();
		if (k % 5 == 0)
			memset(buf + off, 0xff, n); /* carries on every word */
		ck_assert_uint_eq(dds_inet_csum(buf + off, n), naive_csum(buf + off, n, 0));
#if defined(__x86_64__)
		/* both loops: the one dds_inet_csum did not take must agree with the one it took */
		if (__builtin_cpu_supports("avx2"))
			ck_assert_uint_eq(pkt_csum_native(buf + off, n),
					  pkt_csum_native_avx2(buf + off, n));
#endif
	}
}
END_TEST

/* The NIC's checksum verdicts (enum dds_pkt_hw): trusted when given, summed when not. */
static const struct {
	enum tf_kind kind;
	int bad_ip, bad_l4, zero_udp, no_verify;
	unsigned hw;
	enum dds_ctr want;
} hw_cases[] = {
	{TF_UDP, 0, 0, 0, 0, 0, DDS_CTR_rx_udp},
	{TF_UDP, 1, 0, 0, 0, DDS_PKT_HW_IP_GOOD, DDS_CTR_rx_udp}, /* no sum when the NIC did it */
	{TF_UDP, 0, 0, 0, 0, DDS_PKT_HW_IP_BAD, DDS_CTR_drop_ip_checksum},
	{TF_UDP, 0, 0, 0, 0, DDS_PKT_HW_IP_BAD | DDS_PKT_HW_IP_GOOD, DDS_CTR_drop_ip_checksum},
	{TF_UDP, 0, 1, 0, 0, DDS_PKT_HW_IP_GOOD, DDS_CTR_drop_udp_checksum}, /* L4 still summed */
	{TF_UDP, 0, 1, 0, 0, DDS_PKT_HW_L4_GOOD, DDS_CTR_rx_udp},
	{TF_UDP, 0, 0, 0, 0, DDS_PKT_HW_L4_BAD, DDS_CTR_drop_udp_checksum},
	{TF_UDP, 0, 0, 0, 0, DDS_PKT_HW_L4_BAD | DDS_PKT_HW_L4_GOOD, DDS_CTR_drop_udp_checksum},
	{TF_UDP, 0, 0, 0, 1, DDS_PKT_HW_L4_BAD, DDS_CTR_rx_udp},  /* verify_udp_checksum off */
	{TF_UDP, 0, 0, 1, 0, DDS_PKT_HW_L4_BAD, DDS_CTR_rx_udp},  /* zero: no checksum sent */
	{TF_ICMP, 0, 1, 0, 0, DDS_PKT_HW_L4_GOOD, DDS_CTR_drop_icmp_checksum}, /* ICMP: summed */
	{TF_ICMP, 0, 0, 0, 0, DDS_PKT_HW_L4_BAD, DDS_CTR_rx_icmp_echo},
};

START_TEST(nic_checksum_verdicts)
{
	for (size_t k = 0; k < sizeof(hw_cases) / sizeof(hw_cases[0]); k++) {
		struct dds_iface i = me();
		struct tf t = tf_base(hw_cases[k].kind);
		struct dds_pkt p;
		size_t len;
		uint8_t *copy;

		t.payload_len = 40;
		t.bad_ip_csum = hw_cases[k].bad_ip;
		t.bad_udp_csum = t.kind == TF_UDP && hw_cases[k].bad_l4;
		t.bad_icmp_csum = t.kind == TF_ICMP && hw_cases[k].bad_l4;
		t.zero_udp_csum = hw_cases[k].zero_udp;
		i.verify_udp_csum = !hw_cases[k].no_verify;
		len = tf_encode(&t, frame);
		copy = malloc(len);
		memcpy(copy, frame, len);
		ck_assert_msg(dds_pkt_parse(copy, len, &i, hw_cases[k].hw, &p) == hw_cases[k].want,
			      "case %zu: want %s", k, dds_ctr_name(hw_cases[k].want));
		free(copy);
	}
}
END_TEST

START_TEST(counter_names_are_telemetry_keys)
{
	for (int c = 0; c < DDS_CTR__COUNT; c++) {
		const char *n = dds_ctr_name(c);

		ck_assert_ptr_nonnull(n);
		ck_assert_ptr_nonnull(dds_ctr_doc(c));
		ck_assert_uint_eq(strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(n));
		ck_assert_int_eq(dds_ctr_is_drop(c), strncmp(n, "drop_", 5) == 0);
		for (int d = 0; d < c; d++)
			ck_assert_str_ne(n, dds_ctr_name(d));
	}
	ck_assert_ptr_null(dds_ctr_name(DDS_CTR__COUNT));
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "parse", .timeout = 60, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(accepts_udp_of_every_size),
			DDS_CHECK_TEST(accepts_options_zero_csum_and_no_verify),
			DDS_CHECK_TEST(udp_port_span_range),
			DDS_CHECK_TEST(every_parse_drop_reason),
			DDS_CHECK_TEST(every_truncation_is_dropped),
			DDS_CHECK_TEST(arp_reply_is_correct),
			DDS_CHECK_TEST(icmp_reply_is_correct),
			DDS_CHECK_TEST(udp_build_round_trips),
			DDS_CHECK_TEST(csum_matches_naive),
			DDS_CHECK_TEST(nic_checksum_verdicts),
			DDS_CHECK_TEST(counter_names_are_telemetry_keys)) },
		{ .name = NULL },
	};

	return dds_check_main("dataplane_pkt", cases, CK_FORK_GETENV);
}
