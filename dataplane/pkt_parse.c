/* pkt_parse.c: classify a received Ethernet frame (ARP, ICMP echo, UDP for us) or name why it is dropped. */
#include "dds_dataplane.h"
#include "pkt_int.h"

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* A source address we must never answer: 0/8, 127/8, 224/4 and above (multicast, reserved,
 * broadcast). Replying to these would be spoofable amplification or meaningless. */
static int ip_src_unusable(const uint8_t *ip)
{
	return ip[0] == 0 || ip[0] == 127 || ip[0] >= 224;
}

static enum dds_ctr parse_arp(const uint8_t *f, size_t len, const struct dds_iface *me,
			      struct dds_pkt *out)
{
	const uint8_t *a = f + DDS_ETH_HLEN;

	if (len - DDS_ETH_HLEN < DDS_ARP_LEN)
		return DDS_CTR_drop_arp_runt;
	if (pkt_get16(a) != 1 || pkt_get16(a + 2) != PKT_ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4)
		return DDS_CTR_drop_arp_format;
	if (pkt_get16(a + 6) != PKT_ARP_REQUEST)
		return DDS_CTR_drop_arp_op;
	if (memcmp(a + 24, &me->ip, 4) != 0)
		return DDS_CTR_drop_arp_not_for_us;
	if (ip_src_unusable(a + 14))
		return DDS_CTR_drop_arp_src;
	memcpy(out->src.mac, a + 8, 6);
	memcpy(&out->src.ip, a + 14, 4);
	out->src.port = 0;
	out->l3_off = DDS_ETH_HLEN;
	return DDS_CTR_rx_arp_request;
}

static enum dds_ctr parse_icmp(const uint8_t *f, struct dds_pkt *out)
{
	const uint8_t *icmp = f + out->l4_off;

	if (out->l4_len < 8)
		return DDS_CTR_drop_icmp_runt;
	if (pkt_csum_fold(pkt_csum_add(0, icmp, out->l4_len)) != 0)
		return DDS_CTR_drop_icmp_checksum;
	if (icmp[0] != PKT_ICMP_ECHO_REQUEST || icmp[1] != 0)
		return DDS_CTR_drop_icmp_type;
	return DDS_CTR_rx_icmp_echo;
}

/* A destination port (as on the wire at p) in [udp_port, udp_port + span). */
static bool udp_port_ours(const uint8_t *p, const struct dds_iface *me)
{
	uint32_t port = pkt_get16(p), first = pkt_get16((const uint8_t *)&me->udp_port);

	return port >= first && port - first < (me->udp_port_span ? me->udp_port_span : 1u);
}

/* The UDP checksum: none sent (zero) is accepted; else the NIC's verdict, or the sum. */
static bool udp_csum_ok(const uint8_t *f, const struct dds_pkt *out, uint16_t ulen, unsigned hw)
{
	const uint8_t *udp = f + out->l4_off;

	if (pkt_get16(udp + 6) == 0)
		return true;
	if (hw & (DDS_PKT_HW_L4_BAD | DDS_PKT_HW_L4_GOOD))
		return !(hw & DDS_PKT_HW_L4_BAD);
	return pkt_csum_fold(pkt_csum_add(pkt_pseudo_sum(f + out->l3_off + 12, ulen), udp,
					  ulen)) == 0;
}

static enum dds_ctr parse_udp(const uint8_t *f, const struct dds_iface *me, unsigned hw,
			      struct dds_pkt *out)
{
	const uint8_t *udp = f + out->l4_off;
	uint16_t ulen;

	if (out->l4_len < DDS_UDP_HLEN)
		return DDS_CTR_drop_udp_runt;
	ulen = pkt_get16(udp + 4);
	if (ulen < DDS_UDP_HLEN || ulen > out->l4_len)
		return DDS_CTR_drop_udp_len;
	if (me->verify_udp_csum && !udp_csum_ok(f, out, ulen, hw))
		return DDS_CTR_drop_udp_checksum;
	memcpy(&out->src.port, udp, 2);
	if (!udp_port_ours(udp + 2, me) || out->src.port == 0)
		return DDS_CTR_drop_udp_port;
	out->l4_len = ulen;
	out->payload_off = (uint16_t)(out->l4_off + DDS_UDP_HLEN);
	out->payload_len = (uint16_t)(ulen - DDS_UDP_HLEN);
	return DDS_CTR_rx_udp;
}

/* IPv4 checks in the order a router would make them: shape, checksum, addresses, policy. */
static enum dds_ctr parse_ipv4(const uint8_t *f, size_t len, const struct dds_iface *me,
			       unsigned hw, struct dds_pkt *out)
{
	const uint8_t *ip = f + DDS_ETH_HLEN;
	size_t avail = len - DDS_ETH_HLEN;
	size_t ihl, total;

	if (avail < DDS_IP_HLEN)
		return DDS_CTR_drop_ip_runt;
	if (ip[0] >> 4 != 4)
		return DDS_CTR_drop_ip_version;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	if (ihl < DDS_IP_HLEN || ihl > avail)
		return DDS_CTR_drop_ip_ihl;
	total = pkt_get16(ip + 2);
	if (total < ihl || total > avail) /* avail > total is Ethernet padding */
		return DDS_CTR_drop_ip_total_len;
	if (hw & DDS_PKT_HW_IP_BAD ||
	    (!(hw & DDS_PKT_HW_IP_GOOD) && pkt_csum_fold(pkt_csum_add(0, ip, ihl)) != 0))
		return DDS_CTR_drop_ip_checksum;
	if (ip_src_unusable(ip + 12))
		return DDS_CTR_drop_ip_src;
	if (memcmp(ip + 16, &me->ip, 4) != 0)
		return DDS_CTR_drop_ip_not_for_us;
	if (pkt_get16(ip + 6) & (PKT_IP_MF | PKT_IP_OFFMASK))
		return DDS_CTR_drop_ip_fragment;

	memcpy(out->src.mac, f + 6, 6);
	memcpy(&out->src.ip, ip + 12, 4);
	out->src.port = 0;
	out->l3_off = DDS_ETH_HLEN;
	out->l4_off = (uint16_t)(DDS_ETH_HLEN + ihl);
	out->l4_len = (uint16_t)(total - ihl);
	out->payload_off = 0;
	out->payload_len = 0;
	if (ip[9] == PKT_PROTO_UDP)
		return parse_udp(f, me, hw, out);
	if (ip[9] == PKT_PROTO_ICMP)
		return parse_icmp(f, out);
	return DDS_CTR_drop_ip_proto;
}

enum dds_ctr dds_pkt_parse(const uint8_t *f, size_t len, const struct dds_iface *me,
			   unsigned hw, struct dds_pkt *out)
{
	uint16_t type;

	if (len < DDS_ETH_HLEN)
		return DDS_CTR_drop_eth_runt;
	if (memcmp(f, me->mac, 6) != 0 && memcmp(f, bcast_mac, 6) != 0)
		return DDS_CTR_drop_eth_not_for_us;
	type = pkt_get16(f + 12);
	if (type == PKT_ETHERTYPE_IPV4)
		return parse_ipv4(f, len, me, hw, out);
	if (type == PKT_ETHERTYPE_ARP)
		return parse_arp(f, len, me, out);
	return DDS_CTR_drop_eth_type;
}
