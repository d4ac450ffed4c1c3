/* dp_port.c: port, queue and mempool setup for the dataplane, and teardown in reverse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "dp_int.h"

#define DP_ETH_OVERHEAD (RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN)

static int dp_check_cfg(const struct dds_dp_cfg *c, char *err, size_t n)
{
	if (c->n_queues < 1 || c->n_queues > DDS_DP_MAX_QUEUES)
		snprintf(err, n, "queues: %u, want 1..%d", c->n_queues, DDS_DP_MAX_QUEUES);
	else if (c->burst < 1 || c->burst > 512)
		snprintf(err, n, "burst: %u, want 1..512", c->burst);
	else if (c->mtu < 576 || c->mtu > 9600)
		snprintf(err, n, "mtu: %u, want 576..9600", c->mtu);
	else if (!rte_eth_dev_is_valid_port(c->port_id))
		snprintf(err, n, "port %u does not exist (%u ports: check the EAL --vdev/-a arguments)",
			 c->port_id, rte_eth_dev_count_avail());
	else
		return 0;
	return -1;
}

/* One mbuf holds a whole frame of the MTU: the loop never sees chained mbufs it must walk. */
static int dp_make_pool(struct dds_dp *dp, char *err, size_t n)
{
	uint32_t room = RTE_PKTMBUF_HEADROOM + RTE_MAX(2048u, dp->cfg.mtu + DP_ETH_OVERHEAD);

	dp->pool = rte_pktmbuf_pool_create("dds_mbufs", dp->cfg.n_mbufs, dp->cfg.mbuf_cache, 0,
					   (uint16_t)room, rte_eth_dev_socket_id(dp->cfg.port_id));
	if (!dp->pool) {
		snprintf(err, n, "mempool of %u mbufs x %u bytes: %s (raise EAL -m)", dp->cfg.n_mbufs,
			 room, rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

static int dp_configure_port(struct dds_dp *dp, char *err, size_t n)
{
	const struct dds_dp_cfg *c = &dp->cfg;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	struct rte_ether_addr mac;
	uint16_t rxd = c->rx_desc, txd = c->tx_desc;
	int rc;

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(c->port_id, &info);
	if (rc == 0 && c->n_queues > 1 && info.flow_type_rss_offloads) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
	} else if (rc == 0 && c->n_queues > 1) {
		RTE_LOG(WARNING, USER1, "port %u (%s) has no RSS: the PMD spreads queues its own way\n",
			c->port_id, info.driver_name);
	}
	if (rc == 0 && c->n_queues > RTE_MIN(info.max_rx_queues, info.max_tx_queues)) {
		snprintf(err, n, "port %u (%s) has at most %u queues, %u wanted (one per rx lcore)",
			 c->port_id, info.driver_name,
			 RTE_MIN(info.max_rx_queues, info.max_tx_queues), c->n_queues);
		return -1;
	}
	if (rc == 0 && c->rx_csum_offload)
		dp->rx_csum = info.rx_offload_capa &
			      (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
	conf.rxmode.offloads = dp->rx_csum;
	if (rc == 0)
		rc = rte_eth_dev_configure(c->port_id, c->n_queues, c->n_queues, &conf);
	if (rc == 0)
		dp->configured = true;
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(c->port_id, &rxd, &txd);
	for (uint16_t q = 0; rc == 0 && q < c->n_queues; q++) {
		int socket = rte_eth_dev_socket_id(c->port_id);

		rc = rte_eth_rx_queue_setup(c->port_id, q, rxd, socket, NULL, dp->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(c->port_id, q, txd, socket, NULL);
	}
	if (rc == 0)
		rc = rte_eth_macaddr_get(c->port_id, &mac);
	if (rc != 0) {
		snprintf(err, n, "port %u setup: %s", c->port_id, rte_strerror(-rc));
		return -1;
	}
	memcpy(dp->cfg.iface.mac, mac.addr_bytes, 6);
	RTE_LOG(INFO, USER1, "port %u (%s): rx checksum offload: %s\n", c->port_id,
		info.driver_name, dds_dp_rx_csum(dp));
	rc = rte_eth_dev_set_mtu(c->port_id, (uint16_t)c->mtu);
	if (rc != 0)
		RTE_LOG(WARNING, USER1, "port %u: setting MTU %u: %s (kept the device's own)\n",
			c->port_id, c->mtu, rte_strerror(-rc));
	return 0;
}

/* Frames the PMD refused: free them and count them as drops of this queue. */
static void dp_tx_error(struct rte_mbuf **unsent, uint16_t count, void *userdata)
{
	struct dp_queue *q = userdata;

	dds_ctr_add(&q->ctr, DDS_CTR_drop_tx_full, count);
	rte_pktmbuf_free_bulk(unsent, count);
}

int dp_queue_proto_reset(struct dds_dp *dp, struct dp_queue *q)
{
	uint32_t n = dp->cfg.n_devices, added = 0;
	struct dds_proto_devtab *devs = dds_proto_devtab_new(n ? n : 1);
	struct dds_proto_rx *rx = devs ? dds_proto_rx_new(&dp->cfg.proto, devs, NULL) : NULL;

	while (rx && added < n &&
	       !dds_proto_devtab_add(devs, dp->cfg.devices[added].id, dp->cfg.devices[added].key))
		added++;
	if (!rx || added < n) {
		dds_proto_rx_free(rx);
		dds_proto_devtab_free(devs);
		return -1;
	}
	dds_proto_rx_free(q->rx);
	dds_proto_devtab_free(q->devs);
	q->rx = rx;
	q->devs = devs;
	return 0;
}

static int dp_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A branch-free binary search: it runs for every authenticated datagram, where bsearch (a
 * comparator call and a mispredicted branch per step) took about 2.5% of an rx core. b ends
 * at the last id <= the one sought (the ids are unique and ascending). */
int dp_dev_index(const struct dds_dp *dp, uint32_t id)
{
	const uint32_t *b = dp->dev_ids;
	uint32_t n = dp->cfg.n_devices;

	if (n == 0)
		return -1;
	while (n > 1) {
		uint32_t half = n / 2;

		b = b[half] <= id ? b + half : b;
		n -= half;
	}
	return *b == id ? (int)(b - dp->dev_ids) : -1;
}

/* The configured ids, sorted for dp_dev_index(). */
static int dp_make_dev_ids(struct dds_dp *dp, char *err, size_t n)
{
	dp->dev_ids = calloc(dp->cfg.n_devices + 1, sizeof(*dp->dev_ids));
	if (!dp->dev_ids) {
		snprintf(err, n, "devices: out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < dp->cfg.n_devices; i++)
		dp->dev_ids[i] = dp->cfg.devices[i].id;
	qsort(dp->dev_ids, dp->cfg.n_devices, sizeof(*dp->dev_ids), dp_cmp_u32);
	return 0;
}

/* The queue's return ring, device states and histograms. */
static int dp_make_queue_state(struct dds_dp *dp, struct dp_queue *q)
{
	char name[RTE_RING_NAMESIZE];

	snprintf(name, sizeof(name), "dds_ret%u", q->id);
	q->done = rte_ring_create(name, DP_RING_SIZE, rte_eth_dev_socket_id(dp->cfg.port_id),
				  RING_F_SP_ENQ | RING_F_SC_DEQ);
	q->dev = calloc(dp->cfg.n_devices + 1, sizeof(*q->dev));
	for (int m = 0; m <= dp->cfg.n_models; m++)
		for (int i = 0; i < DDS_DP_LAT__COUNT; i++)
			if (!(q->lat[m][i] = dds_dp_hist_new()))
				return -1;
	return q->done && q->dev ? 0 : -1;
}

static int dp_make_queue(struct dds_dp *dp, uint16_t id, char *err, size_t n)
{
	struct dp_queue *q = &dp->q[id];

	q->id = id;
	q->txb = rte_zmalloc_socket("dds_txb", RTE_ETH_TX_BUFFER_SIZE(dp->cfg.burst), 0,
				    rte_eth_dev_socket_id(dp->cfg.port_id));
	if (!q->txb || dp_queue_proto_reset(dp, q) || dp_make_queue_state(dp, q)) {
		snprintf(err, n, "queue %u: out of memory, or a bad reassembly limit", id);
		return -1;
	}
	rte_eth_tx_buffer_init(q->txb, dp->cfg.burst);
	rte_eth_tx_buffer_set_err_callback(q->txb, dp_tx_error, q);
	if (dp->ops.ctx_new && !(q->ctx = dp->ops.ctx_new(dp->ops.arg, id))) {
		snprintf(err, n, "queue %u: the executor could not make its context", id);
		return -1;
	}
	return 0;
}

struct dds_dp *dds_dp_create(const struct dds_dp_cfg *cfg, const struct dds_dp_ops *ops,
			     char *err, size_t err_len)
{
	struct dds_dp *dp;

	if (dp_check_cfg(cfg, err, err_len))
		return NULL;
	if (!ops->submit && !ops->execute) {
		snprintf(err, err_len, "no executor (neither submit nor execute)");
		return NULL;
	}
	dp = rte_zmalloc("dds_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (!dp) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	dp->cfg = *cfg;
	dp->ops = *ops;
	dp->ns_per_tsc = 1e9 / (double)rte_get_tsc_hz();
	if (dp_make_dev_ids(dp, err, err_len) || dp_make_pool(dp, err, err_len) ||
	    dp_configure_port(dp, err, err_len))
		goto err;
	for (uint16_t q = 0; q < cfg->n_queues; q++)
		if (dp_make_queue(dp, q, err, err_len))
			goto err;
	return dp;
err:
	dds_dp_free(dp);
	return NULL;
}

int dds_dp_start(struct dds_dp *dp, char *err, size_t err_len)
{
	int rc = rte_eth_dev_start(dp->cfg.port_id);

	if (rc != 0) {
		snprintf(err, err_len, "port %u start: %s", dp->cfg.port_id, rte_strerror(-rc));
		return rc;
	}
	dp->started = true;
	if (dp->cfg.promiscuous && (rc = rte_eth_promiscuous_enable(dp->cfg.port_id)) != 0)
		RTE_LOG(WARNING, USER1, "port %u: promiscuous mode: %s\n", dp->cfg.port_id,
			rte_strerror(-rc));
	return 0;
}

void dds_dp_free(struct dds_dp *dp)
{
	if (!dp)
		return;
	if (dp->started)
		rte_eth_dev_stop(dp->cfg.port_id);
	if (dp->configured)
		rte_eth_dev_close(dp->cfg.port_id);
	for (int i = DDS_DP_MAX_QUEUES - 1; i >= 0; i--) {
		struct dp_queue *q = &dp->q[i];
		void *job;

		if (q->ctx)
			dp->ops.ctx_free(q->ctx);
		while (q->done && rte_ring_dequeue(q->done, &job) == 0)
			dds_dp_job_free(job);
		rte_ring_free(q->done);
		for (int m = 0; m <= DDS_DP_MAX_MODELS; m++)
			for (int k = 0; k < DDS_DP_LAT__COUNT; k++)
				dds_hist_free(q->lat[m][k]);
		free(q->dev);
		dds_proto_rx_free(q->rx);
		dds_proto_devtab_free(q->devs);
		rte_free(q->txb);
	}
	free(dp->dev_ids);
	rte_mempool_free(dp->pool);
	rte_free(dp);
}

const char *dds_dp_rx_csum(const struct dds_dp *dp)
{
	static const char *const names[4] = {"none", "ipv4", "udp", "ipv4,udp"};

	return names[(dp->rx_csum & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM ? 1 : 0) +
		     (dp->rx_csum & RTE_ETH_RX_OFFLOAD_UDP_CKSUM ? 2 : 0)];
}

const struct dds_iface *dds_dp_iface(const struct dds_dp *dp)
{
	return &dp->cfg.iface;
}

uint16_t dds_dp_n_queues(const struct dds_dp *dp)
{
	return dp->cfg.n_queues;
}

void dds_dp_counters(const struct dds_dp *dp, int queue, struct dds_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (int q = 0; q < dp->cfg.n_queues; q++)
		if (queue < 0 || queue == q)
			for (int c = 0; c < DDS_CTR__COUNT; c++)
				out->v[c] += dds_ctr_read(&dp->q[q].ctr, c);
}

uint64_t dds_dp_proto_count(const struct dds_dp *dp, int reason)
{
	uint64_t sum = 0;

	if (reason < 0 || reason >= DDS_PROTO_REASON__COUNT)
		return 0;
	for (int q = 0; q < dp->cfg.n_queues; q++)
		sum += dds_proto_rx_count(dp->q[q].rx, reason) +
		       __atomic_load_n(&dp->q[q].refused[reason], __ATOMIC_RELAXED);
	return sum;
}

void dds_dp_reasm_usage(const struct dds_dp *dp, uint64_t *slots, uint64_t *bytes)
{
	*slots = *bytes = 0;
	for (int q = 0; q < dp->cfg.n_queues; q++) {
		*slots += dds_proto_rx_slots_used(dp->q[q].rx);
		*bytes += dds_proto_rx_bytes_used(dp->q[q].rx);
	}
}

unsigned dds_dp_mbufs_in_use(const struct dds_dp *dp)
{
	return rte_mempool_in_use_count(dp->pool);
}

struct dds_hist *dds_dp_hist_new(void)
{
	return dds_hist_new(DP_HIST_MAX_NS);
}

int dds_dp_latency(const struct dds_dp *dp, int model, int lat, struct dds_hist *out)
{
	struct dds_hist *one;
	int rc = 0;

	if (lat < 0 || lat >= DDS_DP_LAT__COUNT || model < -1 || model >= dp->cfg.n_models ||
	    !(one = dds_hist_clone(out)))
		return -1;
	dds_hist_clear(out);
	for (int q = 0; q < dp->cfg.n_queues && rc == 0; q++)
		rc = dds_hist_snapshot(dp->q[q].lat[model + 1][lat], one) || dds_hist_add(out, one)
			     ? -1 : 0;
	dds_hist_free(one);
	return rc;
}
