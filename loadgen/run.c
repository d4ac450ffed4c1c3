/* run.c: the live run: every simulated device's requests, timers and accounting in one thread with a timer heap, over an I/O path (kernel sockets or DPDK). */
#define _GNU_SOURCE
#include "lg_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define REG_TRIES 10
#define REG_RETRY_NS (500ull * 1000000ull)
#define POLL_MAX_NS 100000000ull   /* the I/O is polled at least every 100 ms (signals) */
#define LG_BURST_BYTES (128 << 10) /* their bytes: room for the largest --mtu (65535) and more */

enum timer_kind { T_ARRIVE, T_SEND, T_TIMEOUT, T_RETRY, T_REGISTER, T_TICK };

struct timer {
	uint64_t t;
	uint32_t dev, gen;
	uint16_t slot;
	uint8_t kind;
};

struct live {
	struct lg_fleet *f;
	struct lg_stats *s;
	const struct lg_opts *o;
	const struct lg_io_ops *io_ops;
	struct lg_io *io;
	struct timer *heap;
	size_t n_heap, cap_heap;
	struct dds_proto_devtab *devs;
	struct dds_proto_rx *rx;
	struct lg_pcap *pcap;
	int64_t real_off;     /* CLOCK_REALTIME - CLOCK_MONOTONIC, for pcap timestamps */
	uint64_t end_ns;      /* no request starts at or after this */
	int registered;
	bool started;
	double price;         /* the latest price received by any device */
	uint64_t inflight;    /* requests of all devices in a slot */
	char *err;
	size_t err_len;
	bool failed;
	struct lg_burst {              /* datagrams of one device queued for one flush */
		unsigned n;
		size_t used;
		struct iovec iov[LG_BURST];
		uint8_t buf[LG_BURST_BYTES];
	} out;
};

static volatile sig_atomic_t lg_stop;

static void on_signal(int sig)
{
	(void)sig;
	lg_stop = 1;
}

/* ---- timer heap (binary, min on t) ---- */

static int heap_push(struct live *L, struct timer t)
{
	size_t i;

	if (L->n_heap == L->cap_heap) {
		size_t cap = L->cap_heap ? 2 * L->cap_heap : 1024;
		struct timer *h = realloc(L->heap, cap * sizeof(*h));

		if (!h)
			return dds_fail(L->err, L->err_len, "out of memory for timers");
		L->heap = h;
		L->cap_heap = cap;
	}
	for (i = L->n_heap++; i > 0 && L->heap[(i - 1) / 2].t > t.t; i = (i - 1) / 2)
		L->heap[i] = L->heap[(i - 1) / 2];
	L->heap[i] = t;
	return 0;
}

static struct timer heap_pop(struct live *L)
{
	struct timer top = L->heap[0], last = L->heap[--L->n_heap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= L->n_heap)
			break;
		if (c + 1 < L->n_heap && L->heap[c + 1].t < L->heap[c].t)
			c++;
		if (L->heap[c].t >= last.t)
			break;
		L->heap[i] = L->heap[c];
		i = c;
	}
	if (L->n_heap)
		L->heap[i] = last;
	return top;
}

static void timer_at(struct live *L, uint64_t t, enum timer_kind k, int dev, int slot,
		     uint32_t gen)
{
	if (heap_push(L, (struct timer){.t = t, .dev = (uint32_t)dev, .gen = gen,
					 .slot = (uint16_t)slot, .kind = (uint8_t)k}))
		L->failed = true;
}

static void fatal(struct live *L, const char *why)
{
	if (!L->failed)
		dds_fail(L->err, L->err_len, "%s", why);
	L->failed = true;
}

/* ---- sending ---- */

/* What a sent datagram counts: the stats, and the capture (the I/O path's sink.sent). */
static void sent_dgram(void *arg, struct lg_dev *d, const struct iovec *v, uint64_t now)
{
	struct live *L = arg;
	char why[256];

	lg_stats_datagram(L->s, d->model, v->iov_len);
	if (L->pcap && lg_pcap_write(L->pcap, (uint64_t)((int64_t)now + L->real_off), &d->addr,
				     v->iov_base, v->iov_len, why, sizeof(why)))
		fatal(L, why);
}

/* Send device d's queued datagrams through the I/O path. */
static void send_flush(struct live *L, struct lg_dev *d, uint64_t now)
{
	struct lg_burst *b = &L->out;

	L->io_ops->flush(L->io, d, b->iov, b->n, now);
	b->n = 0;
	b->used = 0;
}

/* Room for one more datagram of at most the MTU: sends what is queued if there is none. */
static uint8_t *send_room(struct live *L, struct lg_dev *d, uint64_t now, size_t *cap)
{
	struct lg_burst *b = &L->out;

	if (b->n == LG_BURST || sizeof(b->buf) - b->used < L->o->mtu)
		send_flush(L, d, now);
	*cap = sizeof(b->buf) - b->used;
	return b->buf + b->used;
}

/* Queue the n bytes just written at send_room()'s pointer. */
static void send_queue(struct live *L, size_t n)
{
	struct lg_burst *b = &L->out;

	b->iov[b->n++] = (struct iovec){.iov_base = b->buf + b->used, .iov_len = n};
	b->used += n;
}

static void send_register(struct live *L, int i, uint64_t now)
{
	struct lg_dev *d = &L->f->dev[i];
	size_t cap, n;
	uint8_t *p = send_room(L, d, now, &cap);

	n = lg_dev_register(d, L->o->mtu, L->f->model[d->model]->hash, p, cap);
	d->reg_tries++;
	send_queue(L, n);
	send_flush(L, d, now);
	timer_at(L, now + REG_RETRY_NS, T_REGISTER, i, 0, d->reg_tries);
}

/* Send (or resend after BUSY, with a fresh id) request slot k of device i. */
static void send_request(struct live *L, int i, int k, uint64_t now)
{
	struct lg_dev *d = &L->f->dev[i];
	struct lg_req *r = &d->req[k];
	unsigned count = dds_proto_frag_count(&r->tm, L->o->mtu);

	if (!count) {
		fatal(L, "a request does not fit the MTU (--mtu too small for its descriptors)");
		return;
	}
	if (r->state == LG_REQ_COMPUTING)
		lg_stats_sent(L->s, d->model, r->measured, r->x, r->values, r->n_values);
	else
		LG_COUNT(L->s, d->model, r->measured, retries);
	r->id = ++d->next_id;
	r->sent = now;
	for (unsigned j = 0; j < count && !L->failed; j++) {
		size_t cap, n;
		uint8_t *p = send_room(L, d, now, &cap);

		n = lg_dev_frag(L->f, d, r, j, p, cap);
		if (!n) {
			L->out.n = 0;
			L->out.used = 0;
			fatal(L, "a request fragment does not encode");
			return;
		}
		send_queue(L, n);
	}
	send_flush(L, d, now);
	r->state = LG_REQ_WAITING;
	r->deadline = now + (uint64_t)(L->o->timeout_ms * 1e6);
	timer_at(L, r->deadline, T_TIMEOUT, i, k, ++r->gen);
}

/* ---- request life ---- */

static void closed_loop_next(struct live *L, int i, uint64_t t_done)
{
	struct lg_flow *fl = &L->f->dev[i].flow;

	if (fl->loop != LG_CLOSED)
		return;
	lg_flow_done(fl, t_done);
	if (lg_flow_next(fl) != UINT64_MAX)
		timer_at(L, lg_flow_next(fl), T_ARRIVE, i, 0, 0);
}

static void end_request(struct live *L, int i, int k, enum lg_outcome o, int reason,
			uint64_t now)
{
	struct lg_dev *d = &L->f->dev[i];
	struct lg_req *r = &d->req[k];

	lg_stats_end(L->s, d->model, r->measured, o, reason, r->start, r->sent, now);
	r->state = LG_REQ_FREE;
	r->gen++;
	d->n_inflight--;
	L->inflight--;
	closed_loop_next(L, i, now);
}

static int free_slot(const struct lg_dev *d, unsigned max)
{
	for (unsigned k = 0; k < max; k++)
		if (d->req[k].state == LG_REQ_FREE)
			return (int)k;
	return -1;
}

/* A request of device i starts (intended at `start`, handled at `now`): decide, then send
 * after the head's emulated compute time, counted from the intended start. */
static void start_request(struct live *L, int i, uint64_t start, uint64_t now)
{
	struct lg_dev *d = &L->f->dev[i];
	int k = free_slot(d, L->o->max_inflight);
	bool measured = start >= L->s->meas_ns, local;
	struct lg_req *r;
	uint64_t te, at;

	lg_stats_start(L->s, d->model, start, now);
	if (k < 0) {
		LG_COUNT(L->s, d->model, measured, overflow);
		return;
	}
	r = &d->req[k];
	if (lg_dev_plan(L->f, d, r, &te, &local, L->err, L->err_len)) {
		L->failed = true;
		return;
	}
	if (local) { /* nothing goes on the wire; the budget still follows the price */
		LG_COUNT(L->s, d->model, measured, local);
		dds_device_update(d->dd, d->price, NULL, 0);
		closed_loop_next(L, i, start + te);
		return;
	}
	r->state = LG_REQ_COMPUTING;
	r->start = start;
	r->measured = measured;
	r->tries = 0;
	d->n_inflight++;
	L->inflight++;
	at = lg_send_time(start, te, now);
	if (at <= now)
		send_request(L, i, k, now);
	else
		timer_at(L, at, T_SEND, i, k, ++r->gen);
}

static void arrivals(struct live *L, int i, uint64_t now)
{
	struct lg_flow *fl = &L->f->dev[i].flow;
	uint64_t start;

	while (!L->failed && lg_flow_take(fl, now, &start))
		start_request(L, i, start, now);
	if (fl->loop == LG_OPEN && lg_flow_next(fl) != UINT64_MAX)
		timer_at(L, lg_flow_next(fl), T_ARRIVE, i, 0, 0);
}

/* Every device registered: the run starts now. */
static void start_run(struct live *L, uint64_t now)
{
	const struct lg_opts *o = L->o;
	uint64_t think = (uint64_t)(o->think_ms * 1e6);

	L->started = true;
	L->s->t0_ns = now;
	L->s->meas_ns = now + (uint64_t)(o->warmup * 1e9);
	L->end_ns = L->s->meas_ns + (uint64_t)(o->duration * 1e9);
	for (int i = 0; i < L->f->n; i++) {
		struct lg_flow *fl = &L->f->dev[i].flow;
		uint64_t seed = o->seed * 0x100000001b3ull + (uint64_t)i + 1;

		lg_flow_init(fl, o->loop, o->arrival, o->rate[L->f->dev[i].model], think, now, L->end_ns, seed);
		timer_at(L, lg_flow_next(fl), T_ARRIVE, i, 0, 0);
	}
	timer_at(L, now + LG_NS, T_TICK, 0, 0, 0);
}

static void on_timer(struct live *L, const struct timer *t, uint64_t now)
{
	struct lg_dev *d = &L->f->dev[t->dev];
	struct lg_req *r = &d->req[t->slot];
	char why[256];

	switch (t->kind) {
	case T_ARRIVE:
		arrivals(L, (int)t->dev, now);
		break;
	case T_SEND:
		if (r->state == LG_REQ_COMPUTING && r->gen == t->gen)
			send_request(L, (int)t->dev, t->slot, now);
		break;
	case T_RETRY:
		if (r->state == LG_REQ_RETRY && r->gen == t->gen)
			send_request(L, (int)t->dev, t->slot, now);
		break;
	case T_TIMEOUT:
		if (r->state == LG_REQ_WAITING && r->gen == t->gen)
			end_request(L, (int)t->dev, t->slot, LG_LOST, 0, now);
		break;
	case T_REGISTER:
		if (d->dd || t->gen != d->reg_tries)
			break;
		if (d->reg_tries < REG_TRIES) {
			send_register(L, (int)t->dev, now);
			break;
		}
		snprintf(why, sizeof(why), "device %u: no REGISTER_REPLY after %d tries (is "
			 "dds-server up, at --server, with this device id, key and model?)", d->id,
			 REG_TRIES);
		fatal(L, why);
		break;
	case T_TICK:
		dds_proto_rx_expire(L->rx, now);
		if (!L->o->quiet)
			lg_report_progress(stderr, L->s, now, L->price);
		timer_at(L, now + LG_NS, T_TICK, 0, 0, 0);
		break;
	}
}

/* ---- receiving ---- */

static int find_waiting(const struct lg_dev *d, uint64_t id, unsigned max)
{
	for (unsigned k = 0; k < max; k++)
		if (d->req[k].state == LG_REQ_WAITING && d->req[k].id == id)
			return (int)k;
	return -1;
}

static double msg_price(const struct dds_proto_msg *m)
{
	switch (m->h.type) {
	case DDS_MSG_REGISTER_REPLY: return m->u.reply.price;
	case DDS_MSG_RESULT: return m->u.frag.tm.value;
	case DDS_MSG_PRICE: return m->u.price.price;
	case DDS_MSG_ERROR: return m->u.err.price;
	case DDS_MSG_BUSY: return m->u.busy.price;
	default: return 0;
	}
}

static void on_register_reply(struct live *L, int i, const struct dds_proto_msg *m)
{
	struct lg_dev *d = &L->f->dev[i];
	double work[DDS_PROTO_MAX_WORK];

	if (d->dd || m->h.request_id != d->reg_id)
		return;
	for (unsigned j = 0; j < m->u.reply.n_work; j++)
		work[j] = dds_proto_reg_work(m, j);
	if (lg_dev_attach(L->f, d, m->u.reply.price, m->u.reply.work_kind, work,
			  m->u.reply.n_work, L->err, L->err_len)) {
		L->failed = true;
		return;
	}
	if (++L->registered == L->f->n)
		start_run(L, lg_clock_ns(CLOCK_MONOTONIC));
}

/* An answer to a request (RESULT, ERROR, BUSY) of device i. */
static void on_answer(struct live *L, int i, const struct dds_proto_msg *m, uint64_t now)
{
	struct lg_dev *d = &L->f->dev[i];
	int k = find_waiting(d, m->h.request_id, L->o->max_inflight);
	struct lg_req *r;

	if (k < 0) { /* its request was counted lost already */
		LG_COUNT(L->s, d->model, false, late);
		return;
	}
	r = &d->req[k];
	if (m->h.type == DDS_MSG_RESULT) {
		dds_device_update(d->dd, d->price, NULL, 0);
		end_request(L, i, k, LG_ANSWERED, 0, now);
	} else if (m->h.type == DDS_MSG_ERROR) {
		end_request(L, i, k, LG_ERROR, m->u.err.reason, now);
	} else {
		LG_COUNT(L->s, d->model, r->measured, busy_replies);
		if (r->tries >= L->o->busy_retries) {
			end_request(L, i, k, LG_BUSY, 0, now);
			return;
		}
		r->tries++;
		r->state = LG_REQ_RETRY;
		timer_at(L, now + (uint64_t)m->u.busy.retry_ms * 1000000ull, T_RETRY, i, k, ++r->gen);
	}
}

static void on_message(struct live *L, const struct dds_proto_msg *m, uint64_t now)
{
	int i = lg_fleet_find(L->f, m->h.device_id);
	struct lg_dev *d;
	double p = msg_price(m);

	if (i < 0)
		return;
	d = &L->f->dev[i];
	if (p > 0) {
		d->price = p;
		L->price = p;
		lg_stats_price(L->s, now, m->h.type == DDS_MSG_PRICE ? (int64_t)m->h.request_id : -1,
			       p);
	}
	if (m->h.type == DDS_MSG_REGISTER_REPLY)
		on_register_reply(L, i, m);
	else if (!d->dd)
		return;
	else if (m->h.type == DDS_MSG_PRICE)
		dds_device_update(d->dd, p, NULL, 0);
	else
		on_answer(L, i, m, now);
}

/* A datagram for the devices (the I/O path's sink.recv). */
static void recv_dgram(void *arg, const uint8_t *dgram, size_t len, uint64_t now)
{
	struct live *L = arg;
	struct dds_proto_event ev;

	dds_proto_rx_input(L->rx, dgram, len, now, &ev);
	if (ev.kind == DDS_EV_COMPLETE)
		free(ev.buf);
	if (ev.kind != DDS_EV_NONE)
		on_message(L, &ev.msg, now);
}

/* ---- setup ---- */

static const struct lg_io_ops *io_path(const struct lg_opts *o)
{
#ifdef LG_HAVE_DPDK
	if (o->dpdk)
		return &lg_io_dpdk;
#endif
	(void)o;
	return &lg_io_kernel;
}

static int setup(struct live *L)
{
	const struct lg_opts *o = L->o;
	struct dds_proto_rx_config rc = {
		.role = DDS_ROLE_DEVICE, .max_slots = (uint32_t)L->f->n * o->max_inflight,
		.max_slots_per_device = o->max_inflight, .max_bytes = 1ull << 32,
		.max_bytes_per_device = 1ull << 30, .max_payload = 1u << 30,
		.timeout_ns = (uint64_t)(o->timeout_ms * 1e6)};
	struct lg_io_sink sink = {.arg = L, .sent = sent_dgram, .recv = recv_dgram};
	int io_rc;

	L->real_off = (int64_t)lg_clock_ns(CLOCK_REALTIME) - (int64_t)lg_clock_ns(CLOCK_MONOTONIC);
	L->devs = dds_proto_devtab_new((uint32_t)L->f->n);
	if (!L->devs)
		return dds_fail(L->err, L->err_len, "device table: out of memory");
	for (int i = 0; i < L->f->n; i++)
		if (dds_proto_devtab_add(L->devs, L->f->dev[i].id, L->f->dev[i].key))
			return dds_fail(L->err, L->err_len, "device table full");
	L->rx = dds_proto_rx_new(&rc, L->devs, NULL);
	if (!L->rx)
		return dds_fail(L->err, L->err_len, "protocol receiver: bad config or out of memory");
	L->s->io = L->io_ops->name;
	io_rc = L->io_ops->open(L->f, L->s, &sink, &L->io, L->err, L->err_len);
	if (io_rc)
		return io_rc;
	if (o->pcap && !(L->pcap = lg_pcap_open(o->pcap, L->err, L->err_len)))
		return -1;
	return 0;
}

static void teardown(struct live *L)
{
	char why[256];

	for (int r = 1; L->rx && r < DDS_PROTO_REASON__COUNT; r++)
		L->s->rx_drops[r] = dds_proto_rx_count(L->rx, r);
	if (L->pcap && lg_pcap_close(L->pcap, why, sizeof(why)) && !L->failed)
		fatal(L, why);
	L->io_ops->close(L->io, L->s);
	dds_proto_rx_free(L->rx);
	dds_proto_devtab_free(L->devs);
	free(L->heap);
}

/* Hand the I/O what came until the next timer (at most POLL_MAX_NS away). */
static void poll_io(struct live *L, uint64_t now)
{
	uint64_t wait = POLL_MAX_NS;

	if (L->n_heap)
		wait = L->heap[0].t > now ? L->heap[0].t - now : 0;
	if (wait > POLL_MAX_NS)
		wait = POLL_MAX_NS;
	L->io_ops->poll(L->io, now, now + wait);
}

/* The loop: timers due, then the I/O; it ends when every request started before the end has
 * been answered or timed out. SIGINT/SIGTERM end the arrivals early. */
static void loop(struct live *L)
{
	uint64_t now = lg_clock_ns(CLOCK_MONOTONIC);

	for (int i = 0; i < L->f->n && !L->failed; i++)
		send_register(L, i, now);
	while (!L->failed) {
		now = lg_clock_ns(CLOCK_MONOTONIC);
		if (lg_stop && !L->started)
			fatal(L, "interrupted before every device registered");
		if (lg_stop && L->started && now < L->end_ns)
			L->end_ns = now;
		while (L->n_heap && L->heap[0].t <= now && !L->failed) {
			struct timer t = heap_pop(L);

			if (t.kind == T_ARRIVE && L->started && t.t >= L->end_ns)
				continue;
			on_timer(L, &t, now);
			now = lg_clock_ns(CLOCK_MONOTONIC); /* sending a large request takes a while */
		}
		if (L->failed || (L->started && now >= L->end_ns && !L->inflight))
			break;
		poll_io(L, now);
	}
	if (L->started) {
		uint64_t end = now < L->end_ns ? now : L->end_ns;

		L->s->meas_s = end > L->s->meas_ns ? (double)(end - L->s->meas_ns) / 1e9 : 0;
	}
}

int lg_run_live(struct lg_fleet *f, struct lg_stats *s, char *err, size_t err_len)
{
	struct live *L = calloc(1, sizeof(*L));
	struct sigaction sa = {.sa_handler = on_signal};
	int rc;

	if (!L)
		return dds_fail(err, err_len, "out of memory");
	*L = (struct live){.f = f, .s = s, .o = f->o, .io_ops = io_path(f->o), .err = err,
			   .err_len = err_len};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = setup(L);
	if (rc)
		L->failed = true;
	else
		loop(L);
	teardown(L);
	if (!rc)
		rc = L->failed ? -1 : 0;
	free(L);
	return rc;
}
