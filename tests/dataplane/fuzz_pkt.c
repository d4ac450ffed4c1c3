/* fuzz_pkt.c: libFuzzer target for the L2-L4 parser and the reply builders: any frame is classified without reading past it, and every built reply checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dds_dataplane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The corpus frames are addressed to 02:00:00:00:00:01 / 10.99.0.1, UDP port 9000. */
static struct dds_iface me(void)
{
	struct dds_iface i = {.mac = {2, 0, 0, 0, 0, 1}, .ip = 0, .verify_udp_csum = true};
	const uint8_t ip[4] = {10, 99, 0, 1}, port[2] = {0x23, 0x28};

	memcpy(&i.ip, ip, 4);
	memcpy(&i.udp_port, port, 2);
	return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dds_iface i = me();
	uint8_t *f = malloc(size ? size : 1);
	struct dds_pkt p;
	enum dds_ctr r;
	size_t n;

	if (!f)
		return 0;
	memcpy(f, data, size);
	/* the NIC's checksum verdicts (enum dds_pkt_hw, both of a kind at once too) vary with size */
	r = dds_pkt_parse(f, size, &i, (unsigned)size & 15, &p);
	if (r == DDS_CTR_rx_udp && (size_t)p.payload_off + p.payload_len > size)
		abort();
	if (r == DDS_CTR_rx_arp_request && dds_pkt_arp_reply(f, &i) != DDS_ETH_HLEN + DDS_ARP_LEN)
		abort();
	if (r == DDS_CTR_rx_icmp_echo) {
		n = dds_pkt_icmp_echo_reply(f, &p, &i);
		if (n > size || dds_inet_csum(f + DDS_ETH_HLEN, DDS_IP_HLEN) != 0 ||
		    dds_inet_csum(f + DDS_ETH_HLEN + DDS_IP_HLEN, n - DDS_ETH_HLEN - DDS_IP_HLEN) != 0)
			abort();
	}
	if (r != DDS_CTR_rx_udp && r != DDS_CTR_rx_arp_request && r != DDS_CTR_rx_icmp_echo &&
	    !dds_ctr_is_drop(r))
		abort();
	free(f);
	return 0;
}
