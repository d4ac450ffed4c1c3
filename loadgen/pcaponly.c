/* pcaponly.c: --pcap-only: every device's REGISTER and --requests K requests written to a pcap at their scheduled times, nothing sent. */
#include "lg_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The server's default work regression (docs/server.md): w_v = 1.0 * flops_v + 0. */
static const double server_work[2] = {1.0, 0.0};

struct po_dev {
	unsigned issued;
	bool ready;      /* req holds the next request */
	uint64_t start, send;
	bool local;
	struct lg_req req;
};

static int po_prepare(struct lg_fleet *f, struct lg_stats *s, int i, struct po_dev *p, char *err,
		      size_t err_len)
{
	struct lg_dev *d = &f->dev[i];
	uint64_t te;

	if (!lg_flow_take(&d->flow, UINT64_MAX - 1, &p->start))
		return dds_fail(err, err_len, "arrival process ended early");
	lg_stats_start(s, d->model, p->start, p->start);
	if (lg_dev_plan(f, d, &p->req, &te, &p->local, err, err_len))
		return -1;
	p->send = p->start + te;
	p->ready = true;
	return 0;
}

/* Write request p of device i (all its fragments at its send time), then the budget update
 * the device would make at the fixed price. */
static int po_emit(struct lg_fleet *f, struct lg_stats *s, struct lg_pcap *pc, uint64_t t_base,
		   int i, struct po_dev *p, char *err, size_t err_len)
{
	static uint8_t dgram[65536];
	struct lg_dev *d = &f->dev[i];
	unsigned count = dds_proto_frag_count(&p->req.tm, f->o->mtu);

	p->ready = false;
	p->issued++;
	dds_device_update(d->dd, d->price, NULL, 0);
	if (p->local) {
		LG_COUNT(s, d->model, true, local);
		return 0;
	}
	if (!count)
		return dds_fail(err, err_len, "a request does not fit --mtu %u", f->o->mtu);
	p->req.id = ++d->next_id;
	lg_stats_sent(s, d->model, true, p->req.x, p->req.values, p->req.n_values);
	for (unsigned j = 0; j < count; j++) {
		size_t n = lg_dev_frag(f, d, &p->req, j, dgram, sizeof(dgram));

		if (!n || lg_pcap_write(pc, t_base + p->send, &d->addr, dgram, n, err, err_len))
			return n ? -1 : dds_fail(err, err_len, "a request fragment does not encode");
		lg_stats_datagram(s, d->model, n);
	}
	return 0;
}

/* Each device: REGISTER (1 us apart), then requests in send-time order across devices. */
static int po_write(struct lg_fleet *f, struct lg_stats *s, struct lg_pcap *pc,
		    struct po_dev *pd, char *err, size_t err_len)
{
	const struct lg_opts *o = f->o;
	struct timespec ts;
	uint64_t t_base, t_reg;
	static uint8_t dgram[256];

	clock_gettime(CLOCK_REALTIME, &ts);
	t_reg = (uint64_t)ts.tv_sec * LG_NS + (uint64_t)ts.tv_nsec;
	t_base = t_reg + (uint64_t)f->n * 1000 + 1000000; /* requests from 1 ms after the last REGISTER */
	for (int i = 0; i < f->n; i++) {
		struct lg_dev *d = &f->dev[i];
		size_t n = lg_dev_register(d, o->mtu, f->model[d->model]->hash, dgram, sizeof(dgram));

		if (lg_pcap_write(pc, t_reg + (uint64_t)i * 1000, &d->addr, dgram, n, err, err_len))
			return -1;
		lg_stats_datagram(s, d->model, n);
	}
	for (;;) {
		int best = -1;

		for (int i = 0; i < f->n; i++) {
			if (pd[i].issued == o->requests)
				continue;
			if (!pd[i].ready && po_prepare(f, s, i, &pd[i], err, err_len))
				return -1;
			if (best < 0 || pd[i].send < pd[best].send)
				best = i;
		}
		if (best < 0)
			break;
		if (po_emit(f, s, pc, t_base, best, &pd[best], err, err_len))
			return -1;
		if (pd[best].send > (uint64_t)(s->meas_s * 1e9))
			s->meas_s = (double)pd[best].send / 1e9;
	}
	return 0;
}

int lg_run_pcap_only(struct lg_fleet *f, struct lg_stats *s, char *err, size_t err_len)
{
	const struct lg_opts *o = f->o;
	struct po_dev *pd;
	struct lg_pcap *pc;
	int rc = -1;

	if (o->loop == LG_CLOSED)
		return dds_fail(err, err_len, "--pcap-only writes open-loop arrivals: drop --closed");
	if ((unsigned)o->src_port + (unsigned)f->n - 1 > 65535)
		return dds_fail(err, err_len, "--src-port %u + %d devices passes port 65535",
			       o->src_port, f->n);
	pd = calloc((unsigned)f->n, sizeof(*pd));
	if (!pd)
		return dds_fail(err, err_len, "out of memory");
	for (int i = 0; i < f->n; i++) {
		struct lg_dev *d = &f->dev[i];

		if (lg_dev_attach(f, d, o->price, 1, server_work, 2, err, err_len))
			goto out;
		d->addr = (struct lg_addr){.src_ip = o->src_ip, .dst_ip = o->server_ip,
					   .src_port = (uint16_t)(o->src_port + i),
					   .dst_port = o->server_port};
		memcpy(d->addr.src_mac, o->src_mac, 6);
		memcpy(d->addr.dst_mac, o->dst_mac, 6);
		lg_flow_init(&d->flow, LG_OPEN, o->arrival, o->rate[d->model], 0, 0, UINT64_MAX,
			     o->seed * 0x100000001b3ull + (uint64_t)i + 1);
	}
	pc = lg_pcap_open(o->pcap, err, err_len);
	if (!pc)
		goto out;
	rc = po_write(f, s, pc, pd, err, err_len);
	if (lg_pcap_close(pc, rc ? NULL : err, err_len))
		rc = -1;
out:
	free(pd);
	return rc;
}
