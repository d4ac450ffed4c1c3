/* io_dpdk.c: the live run's DPDK I/O: one port, one rx and one tx queue, frames built and parsed in software, busy-polled on the main lcore. */
#include "lg_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dds_dataplane.h"

#define RX_DESC 1024
#define TX_DESC 1024
#define RX_BURST 32
#define POOL_CACHE 64
#define TX_WAIT_US 50
#define TX_TRIES 20000 /* 20000 waits of 50 us: a second for the tx ring to take a burst */
#define ARP_TRIES 10
#define ARP_WAIT_NS (300ull * 1000000ull)
#define ETH_ARP 0x0806

struct lg_io {
	struct lg_fleet *f;
	struct lg_stats *s;
	struct lg_io_sink sink;
	char **eal_argv;        /* the copy rte_eal_init was given (it may keep pointers) */
	bool eal, configured, started;
	uint16_t port;
	uint16_t ip_id;
	char driver[32];
	struct rte_mempool *pool;
	struct dds_iface me;    /* our MAC, --src-ip and the devices' ports: what we accept */
	uint8_t dst_mac[6];
};

static int eal_init(struct lg_io *io, const struct lg_opts *o, char *err, size_t err_len)
{
	int argc = o->eal_argc + 1;

	io->eal_argv = calloc((size_t)argc + 1, sizeof(char *));
	if (!io->eal_argv)
		return dds_fail(err, err_len, "out of memory");
	io->eal_argv[0] = "dds-loadgen";
	for (int i = 0; i < o->eal_argc; i++)
		io->eal_argv[i + 1] = o->eal_argv[i];
	if (rte_eal_init(argc, io->eal_argv) < 0) {
		dds_fail(err, err_len, "--dpdk: the EAL refused the arguments after '--': %s (its "
			 "lines above say more)", rte_strerror(rte_errno));
		return -2;
	}
	io->eal = true;
	return 0;
}

/* --port, or the first port the EAL found. */
static int pick_port(struct lg_io *io, const struct lg_opts *o, char *err, size_t err_len)
{
	uint16_t p;

	if (o->port >= 0 && !rte_eth_dev_is_valid_port((uint16_t)o->port)) {
		dds_fail(err, err_len, "--port %d: no such DPDK port (%u found)", o->port,
			 rte_eth_dev_count_avail());
		return -2;
	}
	if (o->port >= 0) {
		io->port = (uint16_t)o->port;
		return 0;
	}
	RTE_ETH_FOREACH_DEV(p) {
		io->port = p;
		return 0;
	}
	dds_fail(err, err_len, "--dpdk: no DPDK port: give the EAL one after '--' (--vdev "
		 "net_af_packet0,iface=IF, or -a PCI-ADDRESS of a NIC bound to vfio-pci)");
	return -2;
}

/* The mbufs in flight never outlive the rings: a full rx ring, a full tx ring, the burst being
 * built, the burst received, and the per-lcore caches; rounded up to 2^k - 1. */
static int make_pool(struct lg_io *io, unsigned mtu, uint16_t rxd, uint16_t txd, char *err,
		     size_t err_len)
{
	unsigned room = RTE_PKTMBUF_HEADROOM + RTE_MAX(2048u, mtu + RTE_ETHER_HDR_LEN +
						       RTE_ETHER_CRC_LEN);
	unsigned need = rxd + txd + LG_BURST + RX_BURST + 2 * POOL_CACHE, n = 1;

	while (n - 1 < need)
		n <<= 1;
	io->pool = rte_pktmbuf_pool_create("lg_mbufs", n - 1, POOL_CACHE, 0, (uint16_t)room,
					   rte_eth_dev_socket_id(io->port));
	if (!io->pool)
		return dds_fail(err, err_len, "--dpdk: a mempool of %u mbufs of %u bytes: %s (raise "
			       "the EAL's -m)", n - 1, room, rte_strerror(rte_errno));
	return 0;
}

/* One rx and one tx queue, the MTU, started. -2 when the port refuses what was asked. */
static int port_setup(struct lg_io *io, const struct lg_opts *o, char *err, size_t err_len)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t rxd = RX_DESC, txd = TX_DESC;
	int socket = rte_eth_dev_socket_id(io->port), rc;

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(io->port, &info);
	if (rc == 0)
		snprintf(io->driver, sizeof(io->driver), "%s", info.driver_name);
	if (rc == 0)
		rc = rte_eth_dev_configure(io->port, 1, 1, &conf);
	io->configured = rc == 0;
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(io->port, &rxd, &txd);
	if (rc == 0 && make_pool(io, o->mtu, rxd, txd, err, err_len))
		return -1;
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(io->port, 0, rxd, socket, NULL, io->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(io->port, 0, txd, socket, NULL);
	if (rc == 0)
		rc = rte_eth_macaddr_get(io->port, &mac);
	if (rc != 0)
		return dds_fail(err, err_len, "--dpdk: port %u (%s) setup: %s", io->port, io->driver,
			       rte_strerror(-rc));
	rc = rte_eth_dev_set_mtu(io->port, (uint16_t)o->mtu);
	if (rc != 0) {
		dds_fail(err, err_len, "--mtu %u: port %u (%s) refuses it: %s", o->mtu, io->port,
			 io->driver, rte_strerror(-rc));
		return -2;
	}
	rc = rte_eth_dev_start(io->port);
	if (rc != 0)
		return dds_fail(err, err_len, "--dpdk: port %u (%s) start: %s", io->port, io->driver,
			       rte_strerror(-rc));
	io->started = true;
	memcpy(io->me.mac, o->src_mac_set ? o->src_mac : mac.addr_bytes, 6);
	return 0;
}

/* Send one frame (ARP) now; it is freed if the ring does not take it. */
static void tx_one(struct lg_io *io, struct rte_mbuf *m)
{
	if (rte_eth_tx_burst(io->port, 0, &m, 1) != 1)
		rte_pktmbuf_free(m);
}

/* A broadcast ARP request for the server's IP, from us. */
static void arp_request(struct lg_io *io, uint32_t target_ip)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1}; /* Ethernet, IPv4, request */
	struct rte_mbuf *m = rte_pktmbuf_alloc(io->pool);
	uint8_t *p;

	if (!m)
		return;
	p = (uint8_t *)rte_pktmbuf_append(m, 60); /* 42 bytes of ARP, padded to the minimum */
	if (!p) {
		rte_pktmbuf_free(m);
		return;
	}
	memset(p, 0, 60);
	memcpy(p, bcast, 6);
	memcpy(p + 6, io->me.mac, 6);
	p[12] = ETH_ARP >> 8;
	p[13] = ETH_ARP & 0xff;
	memcpy(p + 14, arp_hdr, 8);
	memcpy(p + 22, io->me.mac, 6);
	memcpy(p + 28, &io->me.ip, 4);
	memcpy(p + 38, &target_ip, 4);
	tx_one(io, m);
}

/* An ARP reply from `ip` (to anyone): its sender MAC into mac. */
static bool arp_reply_from(const uint8_t *f, size_t len, uint32_t ip, uint8_t *mac)
{
	static const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 2}; /* Ethernet, IPv4, reply */

	if (len < 42 || f[12] != ETH_ARP >> 8 || f[13] != (ETH_ARP & 0xff) ||
	    memcmp(f + 14, arp_hdr, 8) || memcmp(f + 28, &ip, 4))
		return false;
	memcpy(mac, f + 22, 6);
	return true;
}

/* One received frame: an ARP request for --src-ip is answered; a UDP datagram to one of the
 * devices' ports goes to the run; an ARP reply from the server fills *resolved (if asked). */
static void rx_frame(struct lg_io *io, struct rte_mbuf *m, uint64_t now, bool *resolved)
{
	uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
	struct dds_pkt p;
	enum dds_ctr c;

	if (m->nb_segs != 1) {
		rte_pktmbuf_free(m);
		return;
	}
	if (resolved && arp_reply_from(f, m->data_len, io->f->o->server_ip, io->dst_mac))
		*resolved = true;
	c = dds_pkt_parse(f, m->data_len, &io->me, 0, &p);
	if (c == DDS_CTR_rx_udp)
		io->sink.recv(io->sink.arg, f + p.payload_off, p.payload_len, now);
	if (c == DDS_CTR_rx_arp_request) {
		m->data_len = m->pkt_len = (uint32_t)dds_pkt_arp_reply(f, &io->me);
		tx_one(io, m);
		return;
	}
	rte_pktmbuf_free(m);
}

/* Frames that came: each handled, freed or sent back. Returns how many. */
static unsigned rx_some(struct lg_io *io, bool *resolved)
{
	struct rte_mbuf *m[RX_BURST];
	uint16_t n = rte_eth_rx_burst(io->port, 0, m, RX_BURST);
	uint64_t now = n ? lg_clock_ns(CLOCK_MONOTONIC) : 0;

	for (uint16_t j = 0; j < n; j++)
		rx_frame(io, m[j], now, resolved);
	return n;
}

/* The server's MAC: --dst-mac, or an ARP request answered within ARP_TRIES tries. */
static int resolve_server(struct lg_io *io, const struct lg_opts *o, char *err, size_t err_len)
{
	char ip[INET_ADDRSTRLEN];
	bool resolved = false;

	if (o->dst_mac_set) {
		memcpy(io->dst_mac, o->dst_mac, 6);
		return 0;
	}
	for (int t = 0; t < ARP_TRIES && !resolved; t++) {
		uint64_t until = lg_clock_ns(CLOCK_MONOTONIC) + ARP_WAIT_NS;

		arp_request(io, o->server_ip);
		while (!resolved && lg_clock_ns(CLOCK_MONOTONIC) < until)
			rx_some(io, &resolved);
	}
	if (resolved)
		return 0;
	inet_ntop(AF_INET, &o->server_ip, ip, sizeof(ip));
	return dds_fail(err, err_len, "--dpdk: no ARP reply from %s on port %u (%s) after %d tries: "
		       "is dds-server up on that link? Else give its MAC with --dst-mac", ip,
		       io->port, io->driver, ARP_TRIES);
}

static int dpdk_open(struct lg_fleet *f, struct lg_stats *s, const struct lg_io_sink *sink,
		     struct lg_io **out, char *err, size_t err_len)
{
	const struct lg_opts *o = f->o;
	struct lg_io *io = *out = calloc(1, sizeof(*io));
	int rc;

	if (!io)
		return dds_fail(err, err_len, "out of memory");
	*io = (struct lg_io){.f = f, .s = s, .sink = *sink};
	io->me.ip = o->src_ip;
	io->me.udp_port = htons(o->src_port);
	io->me.udp_port_span = (uint16_t)f->n;
	io->me.verify_udp_csum = true;
	if ((rc = eal_init(io, o, err, err_len)) || (rc = pick_port(io, o, err, err_len)) ||
	    (rc = port_setup(io, o, err, err_len)) || (rc = resolve_server(io, o, err, err_len)))
		return rc;
	for (int i = 0; i < f->n; i++) {
		struct lg_addr *a = &f->dev[i].addr;

		memcpy(a->src_mac, io->me.mac, 6);
		memcpy(a->dst_mac, io->dst_mac, 6);
		a->src_ip = o->src_ip;
		a->dst_ip = o->server_ip;
		a->src_port = (uint16_t)(o->src_port + i);
		a->dst_port = o->server_port;
	}
	return 0;
}

/* Build the n frames, then hand them to the tx ring, waiting (bounded) while it is full; what
 * it never takes is freed and counted in send_errors. */
static void dpdk_flush(struct lg_io *io, struct lg_dev *d, const struct iovec *dgram, unsigned n,
		       uint64_t now)
{
	struct rte_mbuf *m[LG_BURST];
	unsigned done = 0, tries = 0;

	if (!n)
		return;
	if (rte_pktmbuf_alloc_bulk(io->pool, m, n) != 0) {
		io->s->send_errors += n;
		return;
	}
	for (unsigned j = 0; j < n; j++) {
		uint8_t *p = rte_pktmbuf_mtod(m[j], uint8_t *);
		size_t len = lg_frame_build(p, rte_pktmbuf_tailroom(m[j]), &d->addr, io->ip_id++,
					    dgram[j].iov_base, dgram[j].iov_len);

		m[j]->data_len = (uint16_t)len; /* never 0: the mbufs hold a frame of --mtu */
		m[j]->pkt_len = (uint32_t)len;
	}
	for (;;) {
		uint16_t k = rte_eth_tx_burst(io->port, 0, m + done, (uint16_t)(n - done));

		for (unsigned j = 0; j < k; j++)
			io->sink.sent(io->sink.arg, d, &dgram[done + j], now);
		done += k;
		if (done == n || tries++ == TX_TRIES)
			break;
		io->s->send_stalls++;
		rte_delay_us_block(TX_WAIT_US);
	}
	if (done < n) {
		rte_pktmbuf_free_bulk(m + done, n - done);
		io->s->send_errors += n - done;
	}
}

/* Busy-poll the rx queue until something came or the deadline passed. */
static void dpdk_poll(struct lg_io *io, uint64_t now, uint64_t deadline)
{
	while (!rx_some(io, NULL) && now < deadline)
		now = lg_clock_ns(CLOCK_MONOTONIC);
}

static void dpdk_close(struct lg_io *io, struct lg_stats *s)
{
	struct rte_eth_stats st;

	if (!io)
		return;
	if (io->started && rte_eth_stats_get(io->port, &st) == 0) {
		s->port = (struct lg_port_stats){.valid = true, .port = io->port,
			.ipackets = st.ipackets, .opackets = st.opackets, .imissed = st.imissed,
			.oerrors = st.oerrors};
		snprintf(s->port.driver, sizeof(s->port.driver), "%s", io->driver);
	}
	if (io->started)
		rte_eth_dev_stop(io->port);
	if (io->configured)
		rte_eth_dev_close(io->port);
	if (io->pool) /* every mbuf back, or one leaked */
		s->port.mbufs_in_use = rte_mempool_in_use_count(io->pool);
	rte_mempool_free(io->pool);
	if (io->eal)
		rte_eal_cleanup();
	free(io->eal_argv);
	free(io);
}

const struct lg_io_ops lg_io_dpdk = {
	.name = "dpdk", .open = dpdk_open, .flush = dpdk_flush, .poll = dpdk_poll,
	.close = dpdk_close,
};
