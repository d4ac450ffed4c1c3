/* pcap.c: Ethernet/IPv4/UDP framing with checksums and a classic libpcap file writer, so dds-loadgen's traffic can be replayed. */
#include "lg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define LINKTYPE_ETHERNET 1
#define UDP_MAX_PAYLOAD 65507 /* 65535 - IPv4 20 - UDP 8 */

struct lg_pcap {
	FILE *f;
	uint16_t ip_id;
	bool failed;
	uint8_t frame[LG_FRAME_HDRS + UDP_MAX_PAYLOAD];
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The ones'-complement sum of len bytes (big-endian 16-bit words) added to sum, unfolded. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t lg_frame_build(uint8_t *frame, size_t cap, const struct lg_addr *a, uint16_t ip_id,
		      const uint8_t *payload, size_t len)
{
	uint8_t *ip = frame + 14, *udp = ip + 20, pseudo[12];
	uint16_t c;

	if (len > UDP_MAX_PAYLOAD || cap < LG_FRAME_HDRS + len)
		return 0;
	memcpy(frame, a->dst_mac, 6);
	memcpy(frame + 6, a->src_mac, 6);
	put16(frame + 12, 0x0800);
	ip[0] = 0x45; /* version 4, 20-byte header */
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + 8 + len));
	put16(ip + 4, ip_id);
	put16(ip + 6, 0x4000); /* DF, no fragment */
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	put16(ip + 10, 0);
	memcpy(ip + 12, &a->src_ip, 4);
	memcpy(ip + 16, &a->dst_ip, 4);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	put16(udp, a->src_port);
	put16(udp + 2, a->dst_port);
	put16(udp + 4, (uint16_t)(8 + len));
	put16(udp + 6, 0);
	memcpy(udp + 8, payload, len);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	put16(pseudo + 10, (uint16_t)(8 + len));
	c = csum_fold(csum_add(csum_add(0, pseudo, 12), udp, 8 + len));
	put16(udp + 6, c ? c : 0xffff); /* 0 means "no checksum" in UDP over IPv4 */
	return LG_FRAME_HDRS + len;
}

struct lg_pcap *lg_pcap_open(const char *path, char *err, size_t err_len)
{
	/* magic, version 2.4, thiszone, sigfigs, snaplen, linktype: host byte order, as libpcap */
	const uint32_t hdr[6] = {PCAP_MAGIC_US, 2 | 4u << 16, 0, 0, 65535, LINKTYPE_ETHERNET};
	struct lg_pcap *p = calloc(1, sizeof(*p));

	if (!p) {
		dds_fail(err, err_len, "--pcap: out of memory");
		return NULL;
	}
	p->f = fopen(path, "wb");
	if (!p->f || fwrite(hdr, sizeof(hdr), 1, p->f) != 1) {
		dds_fail(err, err_len, "--pcap %s: %s", path, strerror(errno));
		if (p->f)
			fclose(p->f);
		free(p);
		return NULL;
	}
	return p;
}

int lg_pcap_write(struct lg_pcap *p, uint64_t t_ns, const struct lg_addr *a,
		  const uint8_t *payload, size_t len, char *err, size_t err_len)
{
	size_t n = lg_frame_build(p->frame, sizeof(p->frame), a, p->ip_id++, payload, len);
	uint32_t rec[4] = {(uint32_t)(t_ns / LG_NS), (uint32_t)(t_ns % LG_NS / 1000), (uint32_t)n,
			   (uint32_t)n};

	if (!n)
		return dds_fail(err, err_len, "--pcap: a %zu-byte datagram does not fit a frame", len);
	if (fwrite(rec, sizeof(rec), 1, p->f) != 1 || fwrite(p->frame, n, 1, p->f) != 1) {
		p->failed = true;
		return dds_fail(err, err_len, "--pcap: write failed: %s", strerror(errno));
	}
	return 0;
}

int lg_pcap_close(struct lg_pcap *p, char *err, size_t err_len)
{
	int rc;

	if (!p)
		return 0;
	rc = fclose(p->f) || p->failed ? -1 : 0;
	free(p);
	if (rc)
		return dds_fail(err, err_len, "--pcap: writing the file failed");
	return 0;
}
