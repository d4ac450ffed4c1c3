/* dp_bench.c: the dataplane benchmark's three programs: write a request capture, replay it through the rx path, time memcpy. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "dp_int.h"

#define BENCH_DEVICES 8
#define BENCH_RESULT_FLOATS 10
#define BENCH_OVERHEAD (DDS_PROTO_IP_UDP_OVERHEAD + DDS_PROTO_HDR_LEN + DDS_PROTO_TMSG_LEN + \
			DDS_PROTO_TDESC_LEN + DDS_PROTO_MAC_LEN)

static const char bench_ip[] = "10.99.0.1";

static void bench_key(uint32_t dev, uint8_t *key)
{
	for (int i = 0; i < DDS_PROTO_KEY_LEN; i++)
		key[i] = (uint8_t)(dev * 31 + (uint32_t)i);
}

/* The IP MTU that makes the protocol's fragments carry `frag` data bytes (one tensor). */
static size_t bench_mtu(size_t frag)
{
	return frag + BENCH_OVERHEAD;
}

static void bench_tm(struct dds_proto_tmsg *tm, uint32_t req)
{
	memset(tm, 0, sizeof(*tm));
	tm->value = 1.0;
	tm->payload_len = req;
	tm->n_tensors = 1;
	tm->t[0] = (struct dds_proto_tensor){.value_id = 0, .dtype = DDS_DTYPE_F32, .ndim = 1,
					     .dim = {req / 4}};
}

static void pcap_put(FILE *f, const void *frame, uint32_t len, uint32_t ts)
{
	uint32_t rec[4] = {ts, 0, len, len};

	fwrite(rec, sizeof(rec), 1, f);
	fwrite(frame, len, 1, f);
}

/* A capture of whole requests (every fragment, in order) from BENCH_DEVICES devices, at
 * least `min_pkts` frames. Prints the number of frames. */
static int make_pcap(const char *path, size_t frag, uint32_t req, unsigned min_pkts)
{
	static uint8_t frame[65536];
	const uint32_t hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
	size_t mtu = bench_mtu(frag);
	uint8_t *payload = malloc(req);
	struct dds_proto_tmsg tm;
	struct dds_iface dev = {.udp_port = htons(40000)};
	struct dds_peer srv = {.mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, .port = htons(9000)};
	unsigned pkts = 0;
	uint64_t rid[BENCH_DEVICES + 1] = {0};
	FILE *f = fopen(path, "wb");

	if (!f || !payload) {
		perror(path);
		return 1;
	}
	inet_pton(AF_INET, bench_ip, &srv.ip);
	for (uint32_t i = 0; i < req; i++)
		payload[i] = (uint8_t)(i * 13);
	bench_tm(&tm, req);
	fwrite(hdr, sizeof(hdr), 1, f);
	for (unsigned r = 0; pkts < min_pkts; r++) {
		uint32_t d = r % BENCH_DEVICES + 1;
		struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = d,
					  .request_id = ++rid[d]};
		uint8_t key[DDS_PROTO_KEY_LEN];

		bench_key(d, key);
		dev.mac[5] = (uint8_t)d;
		dev.ip = htonl(0x0a000000u + d);
		for (unsigned i = 0; i < dds_proto_frag_count(&tm, mtu); i++, pkts++) {
			size_t n = dds_proto_encode_frag(&h, &tm, payload, i, mtu, key,
							 frame + DDS_UDP_HDRS, sizeof(frame) - 64);
			size_t len = n ? dds_pkt_udp_build(frame, n, &dev, &srv, (uint16_t)pkts, true) : 0;

			if (!len) {
				fprintf(stderr, "dp_bench: fragment %u does not encode\n", i);
				return 1;
			}
			pcap_put(f, frame, (uint32_t)len, pkts);
		}
	}
	fclose(f);
	free(payload);
	printf("%u\n", pkts);
	return 0;
}

/* One core copying the same fragments into request-sized buffers, as reassembly does. */
static int bench_memcpy(size_t frag, uint32_t req, double seconds)
{
	enum { NBUF = 64 };
	uint8_t *src = malloc(65536), *dst = malloc((size_t)req * NBUF);
	uint64_t frags = 0;
	struct timespec t0, t1;
	double el;

	if (!src || !dst)
		return 1;
	memset(src, 7, 65536);
	memset(dst, 0, (size_t)req * NBUF);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int k = 0; k < 1024; k++) {
			uint8_t *buf = dst + (size_t)req * (frags / ((req + frag - 1) / frag) % NBUF);
			size_t off = frags % ((req + frag - 1) / frag) * frag;
			size_t n = off + frag > req ? req - off : frag;

			memcpy(buf + off, src + (frags % 16) * 64, n);
			frags++;
		}
		__asm__ volatile("" : : "r"(dst) : "memory");
		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	} while (el < seconds);
	printf("{\"pps\": %.0f, \"gbps\": %.3f}\n", (double)frags / el,
	       (double)frags * (double)frag * 8 / el / 1e9);
	free(src);
	free(dst);
	return 0;
}

/* One core verifying fragment MACs: the ceiling the protocol's per-fragment MAC puts on the
 * packet rate, whatever the dataplane does. */
static int bench_mac(size_t frag, double seconds)
{
	size_t len = frag + BENCH_OVERHEAD - DDS_PROTO_IP_UDP_OVERHEAD;
	uint8_t *d = calloc(1, len), key[DDS_PROTO_KEY_LEN];
	uint64_t n = 0, ok = 0;
	struct timespec t0, t1;
	double el;

	bench_key(1, key);
	if (!d || !dds_proto_mac_sign(d, len, key)) { /* the prepared key is cached from here on */
		free(d);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int k = 0; k < 256; k++, n++)
			ok += dds_proto_mac_verify(d, len, key);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	} while (el < seconds);
	printf("{\"pps\": %.0f, \"gbps\": %.3f, \"verified\": %s, \"impl\": \"%s\"}\n",
	       (double)n / el, (double)n * (double)frag * 8 / el / 1e9, ok == n ? "true" : "false",
	       dds_proto_mac_impl());
	free(d);
	return 0;
}

/* The benchmark's executor: no model, a fixed 10-float result, so that what is measured is the
 * dataplane (parse, MAC, replay, reassembly, response) and not a tail. */
static float bench_out[BENCH_RESULT_FLOATS];
static int b_dummy;
static void *b_ctx_new(void *arg, unsigned q) { (void)arg; (void)q; return &b_dummy; }
static void b_ctx_free(void *ctx) { (void)ctx; }
static int b_check(void *arg, uint64_t h, const struct dds_proto_tmsg *tm)
{
	(void)arg; (void)h; (void)tm;
	return DDS_PROTO_OK;
}
static void b_price(void *arg, double *p, double *p0) { (void)arg; *p = *p0 = 1.0; }
static int b_exec(void *ctx, const struct dds_dp_request *rq, struct dds_dp_result *res)
{
	(void)ctx;
	(void)rq;
	res->t = (struct dds_proto_tensor){.value_id = 1, .dtype = DDS_DTYPE_F32, .ndim = 1,
					   .dim = {BENCH_RESULT_FLOATS}};
	res->data = bench_out;
	res->len = sizeof(bench_out);
	return DDS_PROTO_OK;
}

/* interface.verify_udp_checksum as dds-server's default (true), or false with
 * DP_BENCH_UDP_CSUM=0: what the software UDP checksum costs where a PMD has no rx offload. */
static bool bench_udp_csum(void)
{
	const char *v = getenv("DP_BENCH_UDP_CSUM");

	return !v || strcmp(v, "0") != 0;
}

/* Replay the capture (net_pcap, infinite_rx) through the daemon's burst handler on one lcore.
 * At each wrap of the capture the replay windows are reset, or every later pass would be
 * replays; that reset's cost is included. */
static int bench_run(unsigned pcap_pkts, size_t frag, uint32_t req, double seconds, bool l4_only)
{
	static struct dds_dp_device devs[BENCH_DEVICES];
	const struct dds_dp_ops ops = {.ctx_new = b_ctx_new, .ctx_free = b_ctx_free,
				       .execute = b_exec, .check = b_check, .price = b_price};
	struct dds_dp_cfg cfg = {
		.n_queues = 1, .rx_desc = 1024, .tx_desc = 1024, .burst = 32,
		.mtu = (uint32_t)RTE_MAX(bench_mtu(frag), (size_t)1500), .n_mbufs = pcap_pkts + 16383,
		.mbuf_cache = 256, .drain_us = 100, .tx_udp_csum = true,
		.iface = {.udp_port = htons(9000), .verify_udp_csum = bench_udp_csum()},
		.proto = {.role = DDS_ROLE_NODE, .max_slots = 64, .max_slots_per_device = 8,
			  .max_bytes = 1ull << 30, .max_bytes_per_device = 1ull << 28,
			  .max_payload = 1u << 28, .timeout_ns = 1000000000ull},
		.devices = devs, .n_devices = BENCH_DEVICES};
	struct rte_mbuf *pkts[512];
	struct dds_counters c;
	char err[256];
	struct dds_dp *dp;
	uint64_t seen = 0, t0, t1, hz = rte_get_tsc_hz(), resets = 0;

	for (uint32_t d = 0; d < BENCH_DEVICES; d++) {
		devs[d].id = d + 1;
		bench_key(d + 1, devs[d].key);
	}
	inet_pton(AF_INET, bench_ip, &cfg.iface.ip);
	if (l4_only) /* every datagram stops at the last L4 check, after its UDP checksum */
		cfg.iface.udp_port = htons(9001);
	dp = dds_dp_create(&cfg, &ops, err, sizeof(err));
	if (!dp || dds_dp_start(dp, err, sizeof(err))) {
		fprintf(stderr, "dp_bench: %s\n", err);
		dds_dp_free(dp);
		return 1;
	}
	t0 = rte_rdtsc();
	for (t1 = t0; t1 - t0 < (uint64_t)(seconds * (double)hz); t1 = rte_rdtsc()) {
		uint16_t want = (uint16_t)RTE_MIN(32u, pcap_pkts - seen % pcap_pkts);
		uint16_t n = rte_eth_rx_burst(0, 0, pkts, want);
		uint64_t ns = (uint64_t)((double)t1 * dp->ns_per_tsc);

		if (n)
			dp_burst(dp, &dp->q[0], pkts, n, ns);
		seen += n;
		if (n && seen % pcap_pkts == 0 && dp_queue_proto_reset(dp, &dp->q[0]) == 0)
			resets++;
		rte_eth_tx_buffer_flush(0, 0, dp->q[0].txb);
	}
	dds_dp_counters(dp, 0, &c);
	double el = (double)(t1 - t0) / (double)hz;
	printf("{\"frag\": %zu, \"req\": %u, \"seconds\": %.2f, \"rps\": %.0f, \"pps\": %.0f, "
	       "\"gbps\": %.3f, \"served\": %lu, \"rx\": %lu, \"drops_replay\": %lu, \"resets\": %lu}\n",
	       frag, req, el, (double)c.v[DDS_CTR_req_served] / el, (double)c.v[DDS_CTR_rx_pkts] / el,
	       (double)c.v[DDS_CTR_req_complete] * req * 8 / el / 1e9,
	       (unsigned long)c.v[DDS_CTR_req_served], (unsigned long)c.v[DDS_CTR_rx_pkts],
	       (unsigned long)dds_dp_proto_count(dp, DDS_DROP_REPLAY), (unsigned long)resets);
	dds_dp_free(dp);
	return 0;
}

int main(int argc, char **argv)
{
	int used = 0, rc;

	if (argc > 1 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "run-l4") == 0)) {
		/* dp_bench run|run-l4 PKTS FRAG REQ SECONDS -- EAL options */
		if (argc < 7) {
			fprintf(stderr, "usage: dp_bench run|run-l4 PKTS FRAG REQ SECONDS -- EAL...\n");
			return 2;
		}
		used = rte_eal_init(argc - 6, argv + 6);
		if (used < 0) {
			fprintf(stderr, "dp_bench: rte_eal_init: %s\n", rte_strerror(rte_errno));
			return 1;
		}
		rc = bench_run((unsigned)atoi(argv[2]), strtoul(argv[3], NULL, 0),
			       (uint32_t)strtoul(argv[4], NULL, 0), atof(argv[5]),
			       strcmp(argv[1], "run-l4") == 0);
		rte_eal_cleanup();
		return rc;
	}
	if (argc == 6 && strcmp(argv[1], "make-pcap") == 0)
		return make_pcap(argv[2], strtoul(argv[3], NULL, 0), (uint32_t)strtoul(argv[4], NULL, 0),
				 (unsigned)atoi(argv[5]));
	if (argc == 5 && strcmp(argv[1], "memcpy") == 0)
		return bench_memcpy(strtoul(argv[2], NULL, 0), (uint32_t)strtoul(argv[3], NULL, 0),
				    atof(argv[4]));
	if (argc == 4 && strcmp(argv[1], "mac") == 0)
		return bench_mac(strtoul(argv[2], NULL, 0), atof(argv[3]));
	fprintf(stderr, "usage: dp_bench make-pcap FILE FRAG REQ MIN_PKTS | memcpy FRAG REQ SECONDS |"
		" mac FRAG SECONDS | run|run-l4 PKTS FRAG REQ SECONDS -- EAL...\n");
	return 2;
}
