/* dp_loop.c: the per-lcore rx loop: burst receive, L2-L4 verdicts, ARP/ICMP replies, requests to the executor, responses out. */
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "dp_int.h"

#define DP_MAX_BURST 512
#define DP_EXPIRE_NS 1000000ull /* look for timed-out partial requests every millisecond */

/* Queue a frame for sending; the tx buffer sends it when full or at the next drain. */
static void dp_send(struct dds_dp *dp, struct dp_queue *q, struct rte_mbuf *m, size_t len,
		    enum dds_ctr what)
{
	m->data_len = (uint16_t)len;
	m->pkt_len = (uint32_t)len;
	dds_ctr_add(&q->ctr, what, 1);
	dds_ctr_add(&q->ctr, DDS_CTR_tx_pkts, 1);
	dds_ctr_add(&q->ctr, DDS_CTR_tx_bytes, len);
	rte_eth_tx_buffer(dp->cfg.port_id, q->id, q->txb, m);
}

/* A fresh mbuf for a reply datagram: its UDP payload area and capacity. NULL if none left. */
static struct rte_mbuf *dp_reply_mbuf(struct dds_dp *dp, struct dp_queue *q, uint8_t **payload,
				      size_t *cap)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(dp->pool);

	if (!m) {
		dds_ctr_add(&q->ctr, DDS_CTR_drop_tx_no_mbuf, 1);
		return NULL;
	}
	*payload = rte_pktmbuf_mtod(m, uint8_t *) + DDS_UDP_HDRS;
	*cap = RTE_MIN((size_t)rte_pktmbuf_tailroom(m), (size_t)dp->cfg.mtu + DDS_ETH_HLEN) -
	       DDS_UDP_HDRS;
	return m;
}

/* Finish a reply datagram of `n` payload bytes (0: the encoder refused it) and send it. */
static void dp_send_udp(struct dds_dp *dp, struct dp_queue *q, struct rte_mbuf *m, size_t n,
			const struct dds_peer *to, enum dds_ctr what)
{
	if (n == 0) {
		dds_ctr_add(&q->ctr, DDS_CTR_drop_tx_encode, 1);
		rte_pktmbuf_free(m);
		return;
	}
	n = dds_pkt_udp_build(rte_pktmbuf_mtod(m, uint8_t *), n, &dp->cfg.iface, to, q->ip_id++,
			      dp->cfg.tx_udp_csum);
	dp_send(dp, q, m, n, what);
}

static void dp_send_error(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *rq,
			  const struct dds_peer *to, int reason, const uint8_t *key)
{
	struct dds_proto_hdr h = *rq;
	struct rte_mbuf *m;
	uint8_t *out;
	size_t cap;
	double p, p0;

	if (!(m = dp_reply_mbuf(dp, q, &out, &cap)))
		return;
	dp->ops.price(dp->ops.arg, &p, &p0);
	h.type = DDS_MSG_ERROR;
	dp_send_udp(dp, q, m, dds_proto_encode_error(&h, p, (uint16_t)reason, key, out, cap), to,
		    DDS_CTR_tx_error);
}

/* The result in as many RESULT fragments as the MTU needs, each carrying the price. */
static void dp_send_result(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *rq,
			   const struct dds_peer *to, const struct dds_dp_result *res,
			   const uint8_t *key)
{
	struct dds_proto_hdr h = *rq;
	struct dds_proto_tmsg tm;
	unsigned count;
	double p0;

	memset(&tm, 0, sizeof(tm));
	dp->ops.price(dp->ops.arg, &tm.value, &p0);
	tm.payload_len = res->len;
	tm.n_tensors = 1;
	tm.t[0] = res->t;
	h.type = DDS_MSG_RESULT;
	count = dds_proto_frag_count(&tm, dp->cfg.mtu);
	if (count == 0) {
		dds_ctr_add(&q->ctr, DDS_CTR_drop_tx_encode, 1);
		return;
	}
	for (unsigned i = 0; i < count; i++) {
		struct rte_mbuf *m;
		uint8_t *out;
		size_t cap;

		if (!(m = dp_reply_mbuf(dp, q, &out, &cap)))
			return;
		dp_send_udp(dp, q, m,
			    dds_proto_encode_frag(&h, &tm, res->data, i, dp->cfg.mtu, key, out, cap),
			    to, DDS_CTR_tx_result_frag);
	}
	dds_ctr_add(&q->ctr, DDS_CTR_req_served, 1);
}

/* Count a refusal by reason (a reason out of range from an executor counts as bad_split). */
static int dp_refused(struct dp_queue *q, int reason)
{
	if (reason <= DDS_PROTO_OK || reason >= DDS_PROTO_REASON__COUNT)
		reason = DDS_DROP_BAD_SPLIT;
	__atomic_store_n(&q->refused[reason], q->refused[reason] + 1, __ATOMIC_RELAXED);
	return reason;
}

/* A complete request: check the split, run it, answer with the result or an ERROR. The
 * reassembled buffer (malloc'd by the protocol receiver) is ours and freed here. */
static void dp_request(struct dds_dp *dp, struct dp_queue *q, const struct dds_pkt *p,
		       struct dds_proto_event *ev)
{
	const struct dds_proto_msg *msg = &ev->msg;
	const uint8_t *key = dds_proto_devtab_key(q->devs, msg->h.device_id);
	struct dds_dp_request rq = {
		.device_id = msg->h.device_id,
		.request_id = msg->h.request_id,
		.model_hash = msg->h.model_hash,
		.budget = msg->u.frag.tm.value,
		.tm = &msg->u.frag.tm,
		.payload = ev->buf,
	};
	struct dds_dp_result res;
	int reason;

	dds_ctr_add(&q->ctr, DDS_CTR_req_complete, 1);
	reason = dp->ops.check(dp->ops.arg, rq.model_hash, rq.tm);
	if (reason == DDS_PROTO_OK)
		reason = dp->ops.execute(q->ctx, &rq, &res);
	if (reason == DDS_PROTO_OK) {
		if (dp->ops.budget)
			dp->ops.budget(dp->ops.arg, rq.device_id, rq.budget);
		dp_send_result(dp, q, &msg->h, &p->src, &res, key);
	} else {
		reason = dp_refused(q, reason);
		dds_ctr_add(&q->ctr, DDS_CTR_req_refused, 1);
		dp_send_error(dp, q, &msg->h, &p->src, reason, key);
	}
	free(ev->buf);
}

/* A single-datagram message from a device: REGISTER (the only one a node accepts). */
static void dp_register(struct dds_dp *dp, struct dp_queue *q, const struct dds_pkt *p,
			const struct dds_proto_msg *msg)
{
	static const double work[2] = {1.0, 0.0}; /* w_v = flops_v: capacity R is in FLOP/s */
	const uint8_t *key = dds_proto_devtab_key(q->devs, msg->h.device_id);
	const struct dds_proto_rx_config *pc = &dp->cfg.proto;
	struct dds_proto_reg_reply r = {
		.max_payload = pc->max_payload,
		.max_inflight = pc->max_slots_per_device,
		.timeout_ms = (uint32_t)(pc->timeout_ns / 1000000),
		.work_kind = 1,
		.n_work = 2,
		.work = work,
	};
	struct dds_proto_hdr h = msg->h;
	struct rte_mbuf *m;
	uint8_t *out;
	size_t cap;
	int reason;

	dds_ctr_add(&q->ctr, DDS_CTR_rx_proto_message, 1);
	reason = dp->ops.check(dp->ops.arg, msg->h.model_hash, NULL);
	if (reason != DDS_PROTO_OK) {
		dp_send_error(dp, q, &msg->h, &p->src, dp_refused(q, reason), key);
		return;
	}
	if (!(m = dp_reply_mbuf(dp, q, &out, &cap)))
		return;
	dp->ops.price(dp->ops.arg, &r.price, &r.p0);
	h.type = DDS_MSG_REGISTER_REPLY;
	cap = RTE_MIN(cap, (size_t)msg->u.reg.rx_mtu - DDS_IP_HLEN - DDS_UDP_HLEN);
	dp_send_udp(dp, q, m, dds_proto_encode_reg_reply(&h, &r, key, out, cap), &p->src,
		    DDS_CTR_tx_register_reply);
}

/* One received frame. Returns true if the mbuf was reused for a reply (not to be freed). */
static bool dp_handle(struct dds_dp *dp, struct dp_queue *q, struct rte_mbuf *m, uint64_t now_ns)
{
	uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
	struct dds_proto_event ev;
	struct dds_pkt p;
	enum dds_ctr r;

	dds_ctr_add(&q->ctr, DDS_CTR_rx_pkts, 1);
	dds_ctr_add(&q->ctr, DDS_CTR_rx_bytes, m->pkt_len);
	r = m->nb_segs == 1 ? dds_pkt_parse(f, m->data_len, &dp->cfg.iface, &p)
			    : DDS_CTR_drop_rx_segmented;
	dds_ctr_add(&q->ctr, r, 1);
	switch (r) {
	case DDS_CTR_rx_arp_request:
		dp_send(dp, q, m, dds_pkt_arp_reply(f, &dp->cfg.iface), DDS_CTR_tx_arp_reply);
		return true;
	case DDS_CTR_rx_icmp_echo:
		dp_send(dp, q, m, dds_pkt_icmp_echo_reply(f, &p, &dp->cfg.iface),
			DDS_CTR_tx_icmp_reply);
		return true;
	case DDS_CTR_rx_udp:
		dds_proto_rx_input(q->rx, f + p.payload_off, p.payload_len, now_ns, &ev);
		if (ev.kind == DDS_EV_COMPLETE)
			dp_request(dp, q, &p, &ev);
		else if (ev.kind == DDS_EV_MESSAGE && ev.msg.h.type == DDS_MSG_REGISTER)
			dp_register(dp, q, &p, &ev.msg);
		return false;
	default:
		return false;
	}
}

/* Handle a burst; the mbufs not turned into replies are freed together at the end. */
void dp_burst(struct dds_dp *dp, struct dp_queue *q, struct rte_mbuf **pkts, uint16_t n,
	      uint64_t now_ns)
{
	struct rte_mbuf *done[DP_MAX_BURST];
	unsigned n_done = 0;

	for (uint16_t i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (!dp_handle(dp, q, pkts[i], now_ns))
			done[n_done++] = pkts[i];
	}
	rte_pktmbuf_free_bulk(done, n_done);
}

int dds_dp_lcore_main(void *arg)
{
	const struct dds_dp_launch *l = arg;
	struct dds_dp *dp = l->dp;
	struct dp_queue *q = &dp->q[l->queue];
	const uint64_t drain_tsc = rte_get_tsc_hz() / 1000000 * dp->cfg.drain_us;
	uint64_t prev_tsc = rte_rdtsc(), prev_expire = 0;
	struct rte_mbuf *pkts[DP_MAX_BURST];
	uint64_t slots;

	RTE_LOG(INFO, USER1, "lcore %u: rx/tx queue %u of port %u\n", rte_lcore_id(), q->id,
		dp->cfg.port_id);
	while (!*l->stop) {
		uint64_t now = rte_rdtsc();
		uint64_t now_ns = (uint64_t)((double)now * dp->ns_per_tsc);
		uint16_t n;

		if (now - prev_tsc > drain_tsc) {
			rte_eth_tx_buffer_flush(dp->cfg.port_id, q->id, q->txb);
			if (q->id == 0 && dp->ops.poll)
				dp->ops.poll(dp->ops.arg, now_ns);
			prev_tsc = now;
		}
		if (now_ns - prev_expire > DP_EXPIRE_NS) {
			dds_proto_rx_expire(q->rx, now_ns);
			prev_expire = now_ns;
		}
		n = rte_eth_rx_burst(dp->cfg.port_id, q->id, pkts, dp->cfg.burst);
		if (n)
			dp_burst(dp, q, pkts, n, now_ns);
	}
	/* Stopping: what was received is still answered; partial requests are released. */
	for (int k = 0; k < 4; k++) {
		uint16_t n = rte_eth_rx_burst(dp->cfg.port_id, q->id, pkts, dp->cfg.burst);
		uint64_t now_ns = (uint64_t)((double)rte_rdtsc() * dp->ns_per_tsc);

		if (n)
			dp_burst(dp, q, pkts, n, now_ns);
	}
	rte_eth_tx_buffer_flush(dp->cfg.port_id, q->id, q->txb);
	slots = dds_proto_rx_slots_used(q->rx);
	dds_ctr_add(&q->ctr, DDS_CTR_drop_stop_partial, slots);
	RTE_LOG(INFO, USER1, "lcore %u: stopped; %lu partial requests released\n", rte_lcore_id(),
		(unsigned long)slots);
	return 0;
}
