/* pkt_build.c: ARP and ICMP echo replies built in place, UDP headers for responses, the Internet checksum. */
#include "dds_dataplane.h"
#include "pkt_int.h"

/* The Internet checksum's sum: 32-bit native words summed into 64-bit vector lanes (no carry
 * lost below 2^32 words per lane), two vectors per step in four independent chains; then the
 * tail, folded. A one's complement sum is independent of the word size (2^32 = 1 mod 0xffff)
 * and of byte order up to a final swap (RFC 1071). PKT_CSUM_NATIVE(name, VT, LANES) defines
 * the function for a vector type VT of LANES 64-bit lanes: one body, two widths. */
typedef uint64_t pkt_v2u64 __attribute__((vector_size(16))); /* SSE2, NEON */

/* The 32-bit words of the last len (< one step) bytes, the tail zero-padded (RFC 1071 pads an
 * odd byte), added to a and folded to 16 bits. */
static uint64_t csum_tail(uint64_t a, const uint8_t *p, size_t len)
{
	uint32_t h = 0;

	for (; len >= 4; p += 4, len -= 4) {
		memcpy(&h, p, 4);
		a += h;
	}
	if (len) {
		uint8_t last[4] = {0};

		memcpy(last, p, len);
		memcpy(&h, last, 4);
		a += h;
	}
	while (a >> 16)
		a = (a & 0xffff) + (a >> 16);
	return a;
}

#define PKT_CSUM_NATIVE(name, VT, LANES)                                                     \
	uint64_t name(const void *buf, size_t len)                                            \
	{                                                                                     \
		const uint8_t *p = buf;                                                       \
		VT lo = {0}, hi = {0}, lo2 = {0}, hi2 = {0}, x, y, t;                         \
		uint64_t a = 0;                                                               \
                                                                                              \
		for (; len >= 2 * sizeof(VT); p += 2 * sizeof(VT), len -= 2 * sizeof(VT)) {   \
			memcpy(&x, p, sizeof(VT));                                            \
			memcpy(&y, p + sizeof(VT), sizeof(VT));                               \
			lo += x & 0xffffffffu;                                                \
			hi += x >> 32;                                                        \
			lo2 += y & 0xffffffffu;                                               \
			hi2 += y >> 32;                                                       \
		}                                                                             \
		t = lo + hi + lo2 + hi2; /* 4 * 2^32 per step: no overflow below 2^30 */     \
		for (int k = 0; k < (LANES); k++)                                             \
			a += (t[k] & 0xffffffffu) + (t[k] >> 32);                             \
		return csum_tail(a, p, len);                                                  \
	}

PKT_CSUM_NATIVE(pkt_csum_native, pkt_v2u64, 2)

#if defined(__x86_64__)
/* AVX2's four lanes: about 1.8 times the two-lane loop where the CPU has it (gcc lowers a
 * 32-byte vector poorly to SSE2, hence a second width, not one wide loop). */
typedef uint64_t pkt_v4u64 __attribute__((vector_size(32)));
__attribute__((target("avx2"))) PKT_CSUM_NATIVE(pkt_csum_native_avx2, pkt_v4u64, 4)
#endif

uint64_t pkt_csum_add(uint64_t sum, const void *buf, size_t len)
{
	uint16_t native;
	uint8_t bytes[2];

#if defined(__x86_64__)
	native = (uint16_t)(__builtin_cpu_supports("avx2") ? pkt_csum_native_avx2(buf, len)
							    : pkt_csum_native(buf, len));
#else
	native = (uint16_t)pkt_csum_native(buf, len);
#endif
	/* the sum of the words in native order; convert it to big-endian order */
	memcpy(bytes, &native, 2);
	return sum + pkt_get16(bytes);
}

uint16_t dds_inet_csum(const void *buf, size_t len)
{
	return pkt_csum_fold(pkt_csum_add(0, buf, len));
}

size_t dds_pkt_arp_reply(uint8_t *f, const struct dds_iface *me)
{
	uint8_t *a = f + DDS_ETH_HLEN;

	memcpy(f, a + 8, 6); /* to the requester's hardware address */
	memcpy(f + 6, me->mac, 6);
	pkt_put16(a + 6, PKT_ARP_REPLY);
	memcpy(a + 18, a + 8, 10); /* target = old sender (MAC + IP) */
	memcpy(a + 8, me->mac, 6);
	memcpy(a + 14, &me->ip, 4);
	return DDS_ETH_HLEN + DDS_ARP_LEN;
}

/* Fill a 20-byte IPv4 header (no options) and its checksum. */
static void put_ipv4(uint8_t *ip, uint16_t total, uint16_t id, uint8_t proto, uint32_t src,
		     uint32_t dst)
{
	ip[0] = 0x45;
	ip[1] = 0;
	pkt_put16(ip + 2, total);
	pkt_put16(ip + 4, id);
	pkt_put16(ip + 6, 0x4000); /* DF: we never send IP fragments */
	ip[8] = PKT_REPLY_TTL;
	ip[9] = proto;
	pkt_put16(ip + 10, 0);
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	pkt_put16(ip + 10, dds_inet_csum(ip, DDS_IP_HLEN));
}

static void put_eth(uint8_t *f, const uint8_t *dst, const uint8_t *src)
{
	memmove(f, dst, 6);
	memmove(f + 6, src, 6);
	pkt_put16(f + 12, PKT_ETHERTYPE_IPV4);
}

size_t dds_pkt_icmp_echo_reply(uint8_t *f, const struct dds_pkt *p, const struct dds_iface *me)
{
	uint8_t *icmp = f + DDS_ETH_HLEN + DDS_IP_HLEN;
	uint16_t id = pkt_get16(f + DDS_ETH_HLEN + 4);

	/* Options are dropped: move the ICMP message right behind a 20-byte header. */
	memmove(icmp, f + p->l4_off, p->l4_len);
	icmp[0] = PKT_ICMP_ECHO_REPLY;
	pkt_put16(icmp + 2, 0);
	pkt_put16(icmp + 2, dds_inet_csum(icmp, p->l4_len));
	put_ipv4(f + DDS_ETH_HLEN, (uint16_t)(DDS_IP_HLEN + p->l4_len), id, PKT_PROTO_ICMP, me->ip,
		 p->src.ip);
	put_eth(f, p->src.mac, me->mac);
	return DDS_ETH_HLEN + DDS_IP_HLEN + p->l4_len;
}

size_t dds_pkt_udp_build(uint8_t *f, size_t payload_len, const struct dds_iface *me,
			 const struct dds_peer *to, uint16_t ip_id, bool udp_csum)
{
	uint8_t *ip = f + DDS_ETH_HLEN;
	uint8_t *udp = ip + DDS_IP_HLEN;
	size_t ulen = DDS_UDP_HLEN + payload_len;

	if (DDS_IP_HLEN + ulen > 65535)
		return 0;
	put_eth(f, to->mac, me->mac);
	put_ipv4(ip, (uint16_t)(DDS_IP_HLEN + ulen), ip_id, PKT_PROTO_UDP, me->ip, to->ip);
	memcpy(udp, &me->udp_port, 2);
	memcpy(udp + 2, &to->port, 2);
	pkt_put16(udp + 4, (uint16_t)ulen);
	pkt_put16(udp + 6, 0);
	if (udp_csum) {
		uint16_t c = pkt_csum_fold(pkt_csum_add(pkt_pseudo_sum(ip + 12, (uint16_t)ulen),
							  udp, ulen));

		pkt_put16(udp + 6, c ? c : 0xffff); /* 0 means "no checksum" on the wire */
	}
	return DDS_ETH_HLEN + ulen + DDS_IP_HLEN;
}
