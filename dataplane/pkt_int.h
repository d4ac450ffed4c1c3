/* pkt_int.h: helpers shared by the packet parser and the reply builders (private to dataplane/). */
#ifndef DDS_PKT_INT_H
#define DDS_PKT_INT_H

#include <stdint.h>
#include <string.h>

#define PKT_ETHERTYPE_IPV4 0x0800
#define PKT_ETHERTYPE_ARP 0x0806
#define PKT_PROTO_ICMP 1
#define PKT_PROTO_UDP 17
#define PKT_ICMP_ECHO_REPLY 0
#define PKT_ICMP_ECHO_REQUEST 8
#define PKT_ARP_REQUEST 1
#define PKT_ARP_REPLY 2
#define PKT_IP_MF 0x2000u
#define PKT_IP_OFFMASK 0x1fffu
#define PKT_REPLY_TTL 64

static inline uint16_t pkt_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* One's complement sum of a buffer, unfolded, added to `sum`; callers fold with pkt_csum_fold. */
uint64_t pkt_csum_add(uint64_t sum, const void *buf, size_t len);
/* Its two loops, for the tests: the buffer's sum in native byte order, folded to 16 bits. The
 * AVX2 one only where the CPU has AVX2 (pkt_csum_add picks). */
uint64_t pkt_csum_native(const void *buf, size_t len);
#if defined(__x86_64__)
uint64_t pkt_csum_native_avx2(const void *buf, size_t len);
#endif

static inline uint16_t pkt_csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The sum of the UDP pseudo-header (addresses as on the wire, protocol, length). */
static inline uint64_t pkt_pseudo_sum(const uint8_t *src_dst_ip8, uint16_t udp_len)
{
	return pkt_csum_add(0, src_dst_ip8, 8) + PKT_PROTO_UDP + udp_len;
}

#endif
