/* dp_loop.c: the per-lcore rx loop: burst receive, L2-L4 verdicts, ARP/ICMP replies, requests to the executor and back, responses out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "dp_int.h"

#define DP_MAX_BURST 512
#define DP_EXPIRE_NS 1000000ull /* look for timed-out partial requests every millisecond */
#define DP_RETURN_BURST 64      /* jobs taken off the return ring at once */

static const char *const lat_names[DDS_DP_LAT__COUNT] = {
#define DP_LAT_NAME(name, from, to) [DDS_DP_LAT_##name] = #name,
	DDS_DP_LAT_LIST(DP_LAT_NAME)
#undef DP_LAT_NAME
	[DDS_DP_LAT_overhead] = "overhead",
};

const char *dds_dp_lat_name(int lat)
{
	return lat >= 0 && lat < DDS_DP_LAT__COUNT ? lat_names[lat] : NULL;
}

uint64_t dds_dp_now_ns(const struct dds_dp *dp)
{
	return (uint64_t)((double)rte_rdtsc() * dp->ns_per_tsc);
}

void dds_dp_job_free(struct dds_dp_job *job)
{
	if (!job)
		return;
	free((void *)job->rq.payload);
	free(job->out);
	free(job);
}

void dds_dp_job_done(struct dds_dp_job *job)
{
	/* Cannot fail: the queue keeps no more jobs out than its ring holds (dp_submit). */
	rte_ring_sp_enqueue(job->done, job);
}

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

/* A single-datagram message to the device of header rq: ERROR (arg = reason), BUSY (arg =
 * retry_ms) or PRICE, carrying the price now. */
static void dp_send_single(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *rq,
			   const struct dds_peer *to, uint8_t type, uint32_t arg)
{
	const uint8_t *key = dds_proto_devtab_key(q->devs, rq->device_id);
	struct dds_proto_hdr h = *rq;
	struct rte_mbuf *m;
	uint8_t *out;
	size_t cap, n;
	double p, p0;

	if (!key || !(m = dp_reply_mbuf(dp, q, &out, &cap)))
		return;
	dp->ops.price(dp->ops.arg, &p, &p0);
	h.type = type;
	h.frag_index = 0;
	h.frag_count = 1;
	if (type == DDS_MSG_ERROR)
		n = dds_proto_encode_error(&h, p, (uint16_t)arg, key, out, cap);
	else if (type == DDS_MSG_BUSY)
		n = dds_proto_encode_busy(&h, p, arg, key, out, cap);
	else
		n = dds_proto_encode_price(&h, p, key, out, cap);
	dp_send_udp(dp, q, m, n, to,
		    type == DDS_MSG_ERROR  ? DDS_CTR_tx_error
		    : type == DDS_MSG_BUSY ? DDS_CTR_tx_busy
					   : DDS_CTR_tx_price);
}

/* Count a refusal by reason (a reason out of range from an executor counts as exec_failed). */
static int dp_refused(struct dp_queue *q, int reason)
{
	if (reason <= DDS_PROTO_OK || reason >= DDS_PROTO_REASON__COUNT)
		reason = DDS_DROP_EXEC_FAILED;
	__atomic_store_n(&q->refused[reason], q->refused[reason] + 1, __ATOMIC_RELAXED);
	return reason;
}

/* A complete request refused: counted, answered with ERROR. */
static void dp_refuse(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *h,
		      const struct dds_peer *to, int reason)
{
	dds_ctr_add(&q->ctr, DDS_CTR_req_refused, 1);
	dp_send_single(dp, q, h, to, DDS_MSG_ERROR, (uint32_t)dp_refused(q, reason));
}

static void dp_busy(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *h,
		    const struct dds_peer *to, uint32_t retry_ms)
{
	dds_ctr_add(&q->ctr, DDS_CTR_req_busy, 1);
	dp_send_single(dp, q, h, to, DDS_MSG_BUSY, retry_ms);
}

/* The IP MTU of replies to a device: the port's, or the device's REGISTER rx_mtu if smaller. */
static size_t dp_device_mtu(const struct dds_dp *dp, const struct dp_queue *q, uint32_t device)
{
	int i = dp_dev_index(dp, device);
	uint32_t rx = i >= 0 ? q->dev[i].rx_mtu : 0;

	return rx && rx < dp->cfg.mtu ? rx : dp->cfg.mtu;
}

/* The result in as many RESULT fragments as the MTU needs, each carrying the price. */
static void dp_send_result(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *rq,
			   const struct dds_peer *to, const struct dds_dp_result *res)
{
	const uint8_t *key = dds_proto_devtab_key(q->devs, rq->device_id);
	size_t mtu = dp_device_mtu(dp, q, rq->device_id);
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
	count = dds_proto_frag_count(&tm, mtu);
	if (count == 0 || !key) {
		dds_ctr_add(&q->ctr, DDS_CTR_drop_tx_encode, 1);
		return;
	}
	for (unsigned i = 0; i < count; i++) {
		struct rte_mbuf *m;
		uint8_t *out;
		size_t cap;

		if (!(m = dp_reply_mbuf(dp, q, &out, &cap)))
			return;
		dp_send_udp(dp, q, m, dds_proto_encode_frag(&h, &tm, res->data, i, mtu, key, out, cap),
			    to, DDS_CTR_tx_result_frag);
	}
	dds_ctr_add(&q->ctr, DDS_CTR_req_served, 1);
}

/* The intervals of a served request of model `hash` into this queue's histograms, all models'
 * and its own (the lcore is their only writer). A clock step backwards counts as 0. */
static void dp_record(const struct dds_dp *dp, struct dp_queue *q, uint64_t hash,
		      const uint64_t *t)
{
	uint64_t v[DDS_DP_LAT__COUNT];
	int m = 0;

#define DP_LAT_SPAN(name, from, to)                                                               \
	v[DDS_DP_LAT_##name] = t[DDS_STAGE_##to] > t[DDS_STAGE_##from]                            \
				       ? t[DDS_STAGE_##to] - t[DDS_STAGE_##from] : 0;
	DDS_DP_LAT_LIST(DP_LAT_SPAN)
#undef DP_LAT_SPAN
	v[DDS_DP_LAT_overhead] = v[DDS_DP_LAT_end_to_end] - RTE_MIN(v[DDS_DP_LAT_compute],
								    v[DDS_DP_LAT_end_to_end]);
	while (m < dp->cfg.n_models && dp->cfg.model_hashes[m] != hash)
		m++;
	for (int i = 0; i < DDS_DP_LAT__COUNT; i++) {
		dds_hist_record(q->lat[0][i], v[i]);
		if (m < dp->cfg.n_models)
			dds_hist_record(q->lat[1 + m][i], v[i]);
	}
}

/* A request served: its budget joins the market, the RESULT goes out, its stages are recorded. */
static void dp_serve(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *h,
		     const struct dds_peer *to, double budget, uint64_t *t,
		     const struct dds_dp_result *res)
{
	if (dp->ops.budget)
		dp->ops.budget(dp->ops.arg, h->device_id, budget);
	dp_send_result(dp, q, h, to, res);
	t[DDS_STAGE_sent] = dds_dp_now_ns(dp);
	dp_record(dp, q, h->model_hash, t);
}

/* A job back from the executor: answer it and free it. */
static void dp_answer(struct dds_dp *dp, struct dp_queue *q, struct dds_dp_job *job)
{
	struct dds_dp_result res = {.t = job->out_t, .data = job->out, .len = job->out_len};

	if (job->verdict == DDS_PROTO_OK && job->out)
		dp_serve(dp, q, &job->h, &job->peer, job->rq.budget, job->sr.t, &res);
	else if (job->verdict == DDS_DP_BUSY)
		dp_busy(dp, q, &job->h, &job->peer, job->retry_ms);
	else
		dp_refuse(dp, q, &job->h, &job->peer, job->verdict);
	dds_dp_job_free(job);
}

/* Take back the jobs the executor finished. Returns how many. */
static unsigned dp_collect(struct dds_dp *dp, struct dp_queue *q)
{
	struct dds_dp_job *jobs[DP_RETURN_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(q->done, (void **)jobs, DP_RETURN_BURST, NULL);

	for (unsigned i = 0; i < n; i++)
		dp_answer(dp, q, jobs[i]);
	q->inflight -= n;
	if (n)
		rte_eth_tx_buffer_flush(dp->cfg.port_id, q->id, q->txb);
	return n;
}

/* The executor's view of a complete request: its header's fields, tensors and payload. */
static struct dds_dp_request dp_rq(const struct dds_proto_hdr *h, const struct dds_proto_tmsg *tm,
				   const void *payload)
{
	return (struct dds_dp_request){.device_id = h->device_id,
				       .request_id = h->request_id,
				       .model_hash = h->model_hash,
				       .budget = tm->value,
				       .tm = tm,
				       .payload = payload};
}

/* Inline mode: run the request here and answer at once. */
static void dp_inline(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *h,
		      const struct dds_peer *to, const struct dds_dp_request *rq, uint64_t first_ns,
		      uint64_t now_ns)
{
	uint64_t t[DDS_STAGE__COUNT] = {first_ns, now_ns, now_ns, now_ns, 0, 0};
	struct dds_dp_result res;
	int reason = dp->ops.execute(q->ctx, rq, &res);

	t[DDS_STAGE_compute_done] = dds_dp_now_ns(dp);
	if (reason == DDS_PROTO_OK)
		dp_serve(dp, q, h, to, rq->budget, t, &res);
	else
		dp_refuse(dp, q, h, to, reason);
}

/* Asynchronous mode: the request becomes a job for the executor, or a BUSY when no more jobs
 * can be out (the return ring's capacity) or the executor refuses it. */
static void dp_submit(struct dds_dp *dp, struct dp_queue *q, const struct dds_pkt *p,
		      struct dds_proto_event *ev, uint64_t now_ns)
{
	struct dds_dp_job *job = NULL;

	if (q->inflight < rte_ring_get_capacity(q->done))
		job = calloc(1, sizeof(*job));
	if (!job) {
		dp_busy(dp, q, &ev->msg.h, &p->src, dp->cfg.busy_retry_ms);
		free(ev->buf);
		return;
	}
	job->h = ev->msg.h;
	job->peer = p->src;
	job->queue = q->id;
	job->done = q->done;
	job->tm = ev->msg.u.frag.tm;
	job->rq = dp_rq(&job->h, &job->tm, ev->buf);
	job->sr.t[DDS_STAGE_first_frag] = ev->first_ns;
	job->sr.t[DDS_STAGE_complete] = now_ns;
	job->sr.user = job;
	if (dp->ops.submit(dp->ops.arg, job)) {
		dp_busy(dp, q, &job->h, &job->peer, dp->cfg.busy_retry_ms);
		dds_dp_job_free(job);
		return;
	}
	q->inflight++;
}

/* A complete request: check its model, split and budget, then run it inline or hand it to the
 * executor. The reassembled buffer (malloc'd by the protocol receiver) is ours. */
static void dp_request(struct dds_dp *dp, struct dp_queue *q, const struct dds_pkt *p,
		       struct dds_proto_event *ev, uint64_t now_ns)
{
	const struct dds_proto_msg *msg = &ev->msg;
	double x = msg->u.frag.tm.value;
	int reason;

	dds_ctr_add(&q->ctr, DDS_CTR_req_complete, 1);
	reason = dp->ops.check(dp->ops.arg, msg->h.model_hash, &msg->u.frag.tm);
	if (reason == DDS_PROTO_OK && !(isfinite(x) && x > 0))
		reason = DDS_DROP_BAD_VALUE;
	if (reason != DDS_PROTO_OK) {
		dp_refuse(dp, q, &msg->h, &p->src, reason);
		free(ev->buf);
	} else if (dp->ops.submit) {
		dp_submit(dp, q, p, ev, now_ns);
	} else {
		struct dds_dp_request rq = dp_rq(&msg->h, &msg->u.frag.tm, ev->buf);

		dp_inline(dp, q, &msg->h, &p->src, &rq, ev->first_ns, now_ns);
		free(ev->buf);
	}
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
	int reason, i = dp_dev_index(dp, msg->h.device_id);
	struct rte_mbuf *m;
	uint8_t *out;
	size_t cap;

	dds_ctr_add(&q->ctr, DDS_CTR_rx_proto_message, 1);
	if (i >= 0)
		q->dev[i].rx_mtu = msg->u.reg.rx_mtu;
	reason = dp->ops.check(dp->ops.arg, msg->h.model_hash, NULL);
	if (reason != DDS_PROTO_OK) {
		dp_send_single(dp, q, &msg->h, &p->src, DDS_MSG_ERROR,
			       (uint32_t)dp_refused(q, reason));
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

/* An authenticated datagram from a configured device: remember where and when. */
static void dp_seen(struct dds_dp *dp, struct dp_queue *q, const struct dds_proto_hdr *h,
		    const struct dds_peer *from, uint64_t now_ns)
{
	int i = dp_dev_index(dp, h->device_id);

	if (i < 0)
		return;
	q->dev[i].peer = *from;
	q->dev[i].seen_ns = now_ns;
}

/* The NIC's checksum verdicts on m as enum dds_pkt_hw bits; 0 when the port offloads none.
 * CKSUM_NONE (valid data, checksum field not filled) counts as good. */
static unsigned dp_hw_csum(const struct dds_dp *dp, const struct rte_mbuf *m)
{
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	unsigned hw = 0;

	if (!dp->rx_csum)
		return 0;
	if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD || ip == RTE_MBUF_F_RX_IP_CKSUM_NONE)
		hw |= DDS_PKT_HW_IP_GOOD;
	else if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		hw |= DDS_PKT_HW_IP_BAD;
	if (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD || l4 == RTE_MBUF_F_RX_L4_CKSUM_NONE)
		hw |= DDS_PKT_HW_L4_GOOD;
	else if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		hw |= DDS_PKT_HW_L4_BAD;
	return hw;
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
	r = m->nb_segs == 1 ? dds_pkt_parse(f, m->data_len, &dp->cfg.iface, dp_hw_csum(dp, m), &p)
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
		if (ev.reason == DDS_PROTO_OK)
			dp_seen(dp, q, &ev.msg.h, &p.src, now_ns);
		if (ev.kind == DDS_EV_COMPLETE)
			dp_request(dp, q, &p, &ev, now_ns);
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

/* A new market round: PRICE to every device this queue heard from recently. */
static void dp_announce(struct dds_dp *dp, struct dp_queue *q, uint64_t now_ns)
{
	uint64_t round = dp->ops.round ? dp->ops.round(dp->ops.arg) : 0;

	if (round == q->price_round)
		return;
	q->price_round = round;
	for (uint32_t i = 0; round && i < dp->cfg.n_devices; i++) {
		const struct dp_dev *d = &q->dev[i];
		struct dds_proto_hdr h = {.type = DDS_MSG_PRICE, .device_id = dp->dev_ids[i],
					  .request_id = round}; /* model_hash 0 (docs/protocol.md) */

		if (d->seen_ns && now_ns - d->seen_ns <= dp->cfg.price_recent_ns)
			dp_send_single(dp, q, &h, &d->peer, DDS_MSG_PRICE, 0);
	}
}

/* Stopping: a partial request is refused with ERROR shutting_down (if its device's address is
 * known here) and counted in drop_stop_partial. */
struct dp_stop_ctx {
	struct dds_dp *dp;
	struct dp_queue *q;
};

static void dp_stop_partial(void *arg, const struct dds_proto_hdr *h, uint64_t first_ns)
{
	struct dp_stop_ctx *c = arg;
	int i = dp_dev_index(c->dp, h->device_id);

	(void)first_ns;
	dds_ctr_add(&c->q->ctr, DDS_CTR_drop_stop_partial, 1);
	if (i >= 0 && c->q->dev[i].seen_ns)
		dp_send_single(c->dp, c->q, h, &c->q->dev[i].peer, DDS_MSG_ERROR,
			       (uint32_t)dp_refused(c->q, DDS_DROP_SHUTTING_DOWN));
}

/* After the loop: answer what was received, refuse partial requests, wait (bounded) for the
 * jobs out at the executor, which finishes or refuses them within its grace period. */
static void dp_stop(struct dds_dp *dp, struct dp_queue *q)
{
	struct rte_mbuf *pkts[DP_MAX_BURST];
	struct dp_stop_ctx ctx = {dp, q};
	uint64_t deadline;
	unsigned partial;

	for (int k = 0; k < 4; k++) {
		uint16_t n = rte_eth_rx_burst(dp->cfg.port_id, q->id, pkts, dp->cfg.burst);

		if (n)
			dp_burst(dp, q, pkts, n, dds_dp_now_ns(dp));
	}
	partial = dds_proto_rx_drain(q->rx, dp_stop_partial, &ctx);
	rte_eth_tx_buffer_flush(dp->cfg.port_id, q->id, q->txb);
	deadline = dds_dp_now_ns(dp) + dp->cfg.stop_wait_ns;
	while (q->inflight && dds_dp_now_ns(dp) < deadline) {
		if (q->id == 0 && dp->ops.step)
			dp->ops.step(dp->ops.arg);
		if (!dp_collect(dp, q))
			rte_pause();
	}
	rte_eth_tx_buffer_flush(dp->cfg.port_id, q->id, q->txb);
	RTE_LOG(INFO, USER1, "lcore %u: stopped; %u partial requests refused, %u jobs not back\n",
		rte_lcore_id(), partial, q->inflight);
}

int dds_dp_lcore_main(void *arg)
{
	const struct dds_dp_launch *l = arg;
	struct dds_dp *dp = l->dp;
	struct dp_queue *q = &dp->q[l->queue];
	const uint64_t drain_tsc = rte_get_tsc_hz() / 1000000 * dp->cfg.drain_us;
	uint64_t prev_tsc = rte_rdtsc(), prev_expire = 0;
	struct rte_mbuf *pkts[DP_MAX_BURST];

	RTE_LOG(INFO, USER1, "lcore %u: rx/tx queue %u of port %u\n", rte_lcore_id(), q->id,
		dp->cfg.port_id);
	while (!*l->stop) {
		uint64_t now = rte_rdtsc();
		uint64_t now_ns = (uint64_t)((double)now * dp->ns_per_tsc);
		uint16_t n;

		if (now - prev_tsc > drain_tsc) {
			if (q->id == 0 && dp->ops.poll)
				dp->ops.poll(dp->ops.arg, now_ns);
			dp_announce(dp, q, now_ns);
			rte_eth_tx_buffer_flush(dp->cfg.port_id, q->id, q->txb);
			prev_tsc = now;
		}
		if (now_ns - prev_expire > DP_EXPIRE_NS) {
			dds_proto_rx_expire(q->rx, now_ns);
			prev_expire = now_ns;
		}
		n = rte_eth_rx_burst(dp->cfg.port_id, q->id, pkts, dp->cfg.burst);
		if (n) /* stamped now: not before this iteration's timers (a PRICE round's sends) */
			dp_burst(dp, q, pkts, n, dds_dp_now_ns(dp));
		if (q->id == 0 && dp->ops.step)
			dp->ops.step(dp->ops.arg);
		if (q->inflight)
			dp_collect(dp, q);
	}
	dp_stop(dp, q);
	return 0;
}
