/* dds_dataplane.h: L2-L4 packet parsing, validation, drop accounting and reply building over plain byte buffers.
 *
 * This half of the dataplane needs no EAL, no NIC and no network: it works on a frame held in
 * memory (an mbuf's data, a test's array). dds_pkt_parse() classifies a received Ethernet frame
 * as an ARP request for us, an ICMP echo request for us, a UDP datagram for our port, or a drop
 * with its reason. Every outcome is a counter (enum dds_ctr), so the caller bumps exactly one
 * counter per received frame. The builders rewrite a frame in place into its reply, or write
 * the headers of a UDP datagram whose payload already sits after them.
 *
 * Addresses and ports in struct dds_iface / dds_peer are in network byte order (as on the
 * wire), so the fast path never swaps them.
 */
#ifndef DDS_DATAPLANE_H
#define DDS_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DDS_ETH_HLEN 14
#define DDS_ARP_LEN 28
#define DDS_IP_HLEN 20  /* without options */
#define DDS_UDP_HLEN 8
#define DDS_UDP_HDRS (DDS_ETH_HLEN + DDS_IP_HLEN + DDS_UDP_HLEN) /* 42: what a built reply carries */

/* Every counter of the packet path: X(name, doc). Names are telemetry keys (letters, digits,
 * '_'). Values from DDS_CTR_DROP_FIRST on are drop reasons; docs/server.md lists them all. */
#define DDS_CTR_LIST(X) \
	X(rx_pkts, "frames received") \
	X(rx_bytes, "bytes received (Ethernet frames without FCS)") \
	X(rx_arp_request, "ARP requests for our IP (answered)") \
	X(rx_icmp_echo, "ICMP echo requests to our IP (answered)") \
	X(rx_udp, "UDP datagrams to our port (handed to the protocol layer)") \
	X(tx_pkts, "frames queued for sending (those the PMD refuses also count in drop_tx_full)") \
	X(tx_bytes, "bytes queued for sending") \
	X(tx_arp_reply, "ARP replies sent") \
	X(tx_icmp_reply, "ICMP echo replies sent") \
	X(rx_proto_message, "authenticated single-datagram messages (REGISTER)") \
	X(req_complete, "requests fully reassembled") \
	X(req_served, "requests answered with a RESULT") \
	X(req_refused, "requests answered with an ERROR (model, split, budget, execution, stop)") \
	X(tx_result_frag, "RESULT fragments sent") \
	X(tx_register_reply, "REGISTER_REPLY messages sent") \
	X(tx_error, "ERROR messages sent") \
	X(req_busy, "requests answered with BUSY (the executor's or the scheduler's queue was full)") \
	X(tx_busy, "BUSY messages sent") \
	X(tx_price, "PRICE messages sent (one per recent device and closed round)") \
	X(drop_tx_full, "frames the PMD did not accept for sending (tx queue full)") \
	X(drop_tx_no_mbuf, "replies not sent: mempool empty") \
	X(drop_tx_encode, "replies that could not be encoded (MTU too small for the message)") \
	X(drop_stop_partial, "partial requests released when the daemon stopped") \
	X(drop_rx_segmented, "frame spread over several mbufs (larger than the configured mbuf)") \
	X(drop_eth_runt, "frame shorter than an Ethernet header") \
	X(drop_eth_not_for_us, "destination MAC neither ours nor broadcast") \
	X(drop_eth_type, "EtherType neither IPv4 nor ARP (VLAN, IPv6, ...)") \
	X(drop_arp_runt, "ARP shorter than 28 bytes") \
	X(drop_arp_format, "ARP not Ethernet/IPv4 (htype, ptype, hlen, plen)") \
	X(drop_arp_op, "ARP operation other than request") \
	X(drop_arp_not_for_us, "ARP request for another IP") \
	X(drop_arp_src, "ARP sender IP unusable (zero, broadcast, multicast, loopback)") \
	X(drop_ip_runt, "IPv4 header cut short") \
	X(drop_ip_version, "IP version not 4") \
	X(drop_ip_ihl, "IPv4 header length below 20 or past the frame") \
	X(drop_ip_total_len, "IPv4 total length below the header or past the frame") \
	X(drop_ip_checksum, "IPv4 header checksum wrong (summed here, or the NIC said so)") \
	X(drop_ip_src, "IPv4 source unusable (zero, broadcast, multicast, loopback)") \
	X(drop_ip_not_for_us, "IPv4 destination not our IP") \
	X(drop_ip_fragment, "IPv4 fragment (refused by policy; the protocol fragments itself)") \
	X(drop_ip_proto, "IPv4 protocol neither ICMP nor UDP") \
	X(drop_icmp_runt, "ICMP message shorter than 8 bytes") \
	X(drop_icmp_checksum, "ICMP checksum wrong") \
	X(drop_icmp_type, "ICMP message other than echo request") \
	X(drop_udp_runt, "UDP header cut short") \
	X(drop_udp_len, "UDP length below 8 or past the IP payload") \
	X(drop_udp_checksum, "UDP checksum wrong, summed here or the NIC said so (when verification is on)") \
	X(drop_udp_port, "UDP destination not our port, or source port 0")

enum dds_ctr {
#define DDS_CTR_ENUM(name, doc) DDS_CTR_##name,
	DDS_CTR_LIST(DDS_CTR_ENUM)
#undef DDS_CTR_ENUM
	DDS_CTR__COUNT
};

#define DDS_CTR_DROP_FIRST DDS_CTR_drop_tx_full

/* Name (telemetry key) and one-line description of a counter; NULL if out of range. */
const char *dds_ctr_name(enum dds_ctr c);
const char *dds_ctr_doc(enum dds_ctr c);

static inline bool dds_ctr_is_drop(enum dds_ctr c)
{
	return c >= DDS_CTR_DROP_FIRST && c < DDS_CTR__COUNT;
}

/* One thread's counters, alone on its cache lines. Only the owning thread writes (relaxed
 * atomic stores, so a telemetry thread may read them at any time); values only ever grow. */
struct dds_counters {
	uint64_t v[DDS_CTR__COUNT];
} __attribute__((aligned(64)));

static inline void dds_ctr_add(struct dds_counters *cs, enum dds_ctr c, uint64_t n)
{
	__atomic_store_n(&cs->v[c], cs->v[c] + n, __ATOMIC_RELAXED);
}

static inline uint64_t dds_ctr_read(const struct dds_counters *cs, enum dds_ctr c)
{
	return __atomic_load_n(&cs->v[c], __ATOMIC_RELAXED);
}

/* Our own addresses and what we accept. */
struct dds_iface {
	uint8_t mac[6];
	uint32_t ip;        /* network order */
	uint16_t udp_port;  /* network order */
	bool verify_udp_csum; /* a zero UDP checksum (none sent) is always accepted */
	uint16_t udp_port_span; /* UDP destinations udp_port .. udp_port + span - 1 are ours;
				 * 0 or 1: udp_port alone (the server). dds-loadgen --dpdk gives
				 * each simulated device its own port. */
};

/* Where a reply goes: the sender of a request, as parsed. */
struct dds_peer {
	uint8_t mac[6];
	uint32_t ip;   /* network order */
	uint16_t port; /* network order */
};

/* What dds_pkt_parse() found in an accepted frame. Offsets are from the frame's start. */
struct dds_pkt {
	struct dds_peer src;
	uint16_t l3_off;      /* ARP or IPv4 header */
	uint16_t l4_off;      /* ICMP or UDP header (IPv4 only) */
	uint16_t l4_len;      /* ICMP message or UDP datagram, header included */
	uint16_t payload_off; /* UDP payload */
	uint16_t payload_len;
};

/* What the NIC already checked in a frame (its rx checksum offload; the rx loop maps the
 * mbuf's ol_flags): the parser then trusts the verdict instead of summing the bytes. GOOD
 * skips the sum, BAD drops as a failed sum would (same counter; BAD wins if both are set);
 * neither: summed here. L4
 * verdicts apply to UDP only (ICMP is always summed) and only with verify_udp_csum. */
enum dds_pkt_hw {
	DDS_PKT_HW_IP_GOOD = 1u << 0,
	DDS_PKT_HW_IP_BAD = 1u << 1,
	DDS_PKT_HW_L4_GOOD = 1u << 2,
	DDS_PKT_HW_L4_BAD = 1u << 3,
};

/* Classify a received frame (without FCS) of `len` bytes; hw: enum dds_pkt_hw bits (0: none).
 * Returns DDS_CTR_rx_arp_request, DDS_CTR_rx_icmp_echo or DDS_CTR_rx_udp with *out filled, or
 * a drop reason (dds_ctr_is_drop()) with *out unspecified. Never reads outside [f, f+len). */
enum dds_ctr dds_pkt_parse(const uint8_t *f, size_t len, const struct dds_iface *me,
			   unsigned hw, struct dds_pkt *out);

/* Rewrite an ARP request that dds_pkt_parse() accepted into our reply, in place.
 * Returns the reply's length (42 bytes; the NIC pads to 60). */
size_t dds_pkt_arp_reply(uint8_t *f, const struct dds_iface *me);

/* Rewrite an ICMP echo request that dds_pkt_parse() accepted (as described by p) into the
 * echo reply, in place: addresses swapped, IP options dropped, checksums recomputed.
 * Returns the reply's length (never more than the request's). */
size_t dds_pkt_icmp_echo_reply(uint8_t *f, const struct dds_pkt *p, const struct dds_iface *me);

/* Write Ethernet + IPv4 + UDP headers (DDS_UDP_HDRS bytes) at f for the payload of
 * `payload_len` bytes that already sits at f + DDS_UDP_HDRS, from us to `to`. The UDP checksum
 * is computed when `udp_csum` (else sent as 0, "none"). Returns the frame length, or 0 if the
 * datagram would exceed 65535 bytes of IP. */
size_t dds_pkt_udp_build(uint8_t *f, size_t payload_len, const struct dds_iface *me,
			 const struct dds_peer *to, uint16_t ip_id, bool udp_csum);

/* The Internet checksum (RFC 1071) of a buffer, folded and complemented, for headers. */
uint16_t dds_inet_csum(const void *buf, size_t len);

#endif
