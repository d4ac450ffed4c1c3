/* reply_check.c: checks a dds-server's replies captured off a port against the requests that were sent: every datagram parses (dds_proto_parse), its MAC verifies with the device key, every request got one complete RESULT, and each RESULT equals the model's tail recomputed from the request's tensors by the reference kernels. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds_engine.h"
#include "dds_model.h"
#include "dds_proto.h"

#define RC_MAX_REQUESTS 4096
#define RC_TOLERANCE 1e-3 /* relative to max(1, |reference|): fast vs reference kernels, a few layers */

/* A fragmented message (REQUEST or RESULT) being put together. buf: owned, payload_len bytes. */
struct rc_msg {
	struct dds_proto_tmsg tm;
	uint8_t *buf;
	uint32_t got; /* fragment bytes received */
	unsigned frags;
};

/* A request seen in the request capture and its RESULT. */
struct rc_request {
	uint32_t device_id;
	uint64_t request_id;
	struct rc_msg req, res;
};

struct rc_state {
	uint8_t key[DDS_PROTO_KEY_LEN];
	struct rc_request req[RC_MAX_REQUESTS];
	unsigned n_req;
	unsigned long by_type[DDS_MSG_BUSY + 1];
};

static struct rc_request *rc_find(struct rc_state *s, uint32_t dev, uint64_t id)
{
	for (unsigned i = 0; i < s->n_req; i++)
		if (s->req[i].device_id == dev && s->req[i].request_id == id)
			return &s->req[i];
	return NULL;
}

/* Copy one fragment into its message (allocated at the first). Returns 0, or 1 with a message. */
static int rc_add_frag(struct rc_msg *g, const struct dds_proto_msg *m, unsigned long n)
{
	const struct dds_proto_tmsg *tm = &m->u.frag.tm;

	if (!g->buf) {
		g->tm = *tm;
		g->buf = calloc(1, tm->payload_len ? tm->payload_len : 1);
		if (!g->buf) {
			fprintf(stderr, "datagram %lu: out of memory\n", n);
			return 1;
		}
	}
	if (g->tm.payload_len != tm->payload_len ||
	    (uint64_t)m->u.frag.frag_offset + m->u.frag.frag_len > tm->payload_len) {
		fprintf(stderr, "datagram %lu: fragment does not fit its message\n", n);
		return 1;
	}
	memcpy(g->buf + m->u.frag.frag_offset, m->u.frag.data, m->u.frag.frag_len);
	g->got += m->u.frag.frag_len;
	g->frags++;
	return 0;
}

/* A REQUEST fragment: its request, added at its first fragment. NULL (with a message) if full. */
static struct rc_request *rc_request_of(struct rc_state *s, const struct dds_proto_hdr *h)
{
	struct rc_request *r = rc_find(s, h->device_id, h->request_id);

	if (r)
		return r;
	if (s->n_req == RC_MAX_REQUESTS) {
		fprintf(stderr, "more than %d requests\n", RC_MAX_REQUESTS);
		return NULL;
	}
	r = &s->req[s->n_req++];
	r->device_id = h->device_id;
	r->request_id = h->request_id;
	return r;
}

/* One datagram of either capture: parse, verify, account. Returns 0 or prints why and 1. */
static int rc_datagram(struct rc_state *s, const uint8_t *d, size_t len, bool reply, unsigned long n)
{
	const char *what = reply ? "reply" : "request";
	struct dds_proto_msg m;
	struct rc_request *r;
	int rc = dds_proto_parse(d, len, &m);

	if (rc != DDS_PROTO_OK) {
		fprintf(stderr, "%s datagram %lu: %s\n", what, n, dds_proto_reason_name(rc));
		return 1;
	}
	if (!dds_proto_mac_verify(d, len, s->key)) {
		fprintf(stderr, "%s datagram %lu: MAC does not verify\n", what, n);
		return 1;
	}
	if (!reply) {
		if (m.h.type != DDS_MSG_REQUEST)
			return 0;
		r = rc_request_of(s, &m.h);
		return r ? rc_add_frag(&r->req, &m, n) : 1;
	}
	s->by_type[m.h.type]++;
	if (m.h.type != DDS_MSG_RESULT)
		return 0;
	r = rc_find(s, m.h.device_id, m.h.request_id);
	if (!r) {
		fprintf(stderr, "reply datagram %lu: RESULT for device %u request %llu never sent\n", n,
			m.h.device_id, (unsigned long long)m.h.request_id);
		return 1;
	}
	return rc_add_frag(&r->res, &m, n);
}

/* Records: [u32 little-endian length][datagram] ... Returns 0, or 1 at the first failure. */
static int rc_file(struct rc_state *s, const char *path, bool reply)
{
	static uint8_t d[65536];
	FILE *f = fopen(path, "rb");
	unsigned long n = 0;
	uint32_t len;
	int bad = 0;

	if (!f) {
		perror(path);
		return 1;
	}
	while (!bad && fread(&len, 4, 1, f) == 1) {
		if (len > sizeof(d) || fread(d, len, 1, f) != 1) {
			fprintf(stderr, "%s: record %lu truncated\n", path, n);
			bad = 1;
		} else {
			bad = rc_datagram(s, d, len, reply, n++);
		}
	}
	fclose(f);
	return bad;
}

/* The tail of r's split, run from its sent tensors: every layer whose output was not sent (a
 * head layer run here sees stale values, but a valid split sends a value on every path from the
 * raw input to the output, so none reaches it). Returns the largest error relative to
 * max(1, |reference|), or INFINITY (with a message) when the RESULT cannot match. */
static double rc_recompute(struct dds_engine *e, const struct dds_model *m, uint8_t *mask,
			   const struct rc_request *r)
{
	const struct dds_shape *out_shape = dds_model_value_shape(m, m->output + 1);
	size_t n_out = dds_shape_numel(out_shape), off = 0;
	const float *ref, *got = (const float *)r->res.buf;
	struct dds_err err = {{0}};
	double worst = 0;

	memset(mask, 1, (size_t)m->n_layers);
	for (unsigned i = 0; i < r->req.tm.n_tensors; i++) {
		int v = r->req.tm.t[i].value_id;
		const struct dds_shape *sh = dds_model_value_shape(m, v);
		size_t b = sh ? dds_shape_numel(sh) * sizeof(float) : 0;

		if (!sh || off + b > r->req.tm.payload_len) {
			fprintf(stderr, "request %llu: tensor %u does not fit the model\n",
				(unsigned long long)r->request_id, i);
			return INFINITY;
		}
		memcpy(dds_engine_value(e, v), r->req.buf + off, b);
		off += b;
		if (v > 0)
			mask[v - 1] = 0;
	}
	if (r->res.tm.payload_len != n_out * sizeof(float) || dds_engine_run(e, mask, 1, &err)) {
		fprintf(stderr, "request %llu: RESULT of %u bytes, want %zu%s%s\n",
			(unsigned long long)r->request_id, r->res.tm.payload_len, n_out * sizeof(float),
			err.msg[0] ? ": " : "", err.msg);
		return INFINITY;
	}
	ref = dds_engine_value(e, m->output + 1);
	for (size_t j = 0; j < n_out; j++) {
		double d = fabs((double)got[j] - ref[j]) / fmax(1.0, fabs(ref[j]));

		worst = isnan(d) ? INFINITY : fmax(worst, d);
	}
	return worst;
}

/* Every request complete, answered by one complete RESULT equal to the recomputed tail. Prints the
 * figures as JSON. Returns 0 when all hold. */
static int rc_report(const struct rc_state *s, const struct dds_model *m, struct dds_engine *e)
{
	uint8_t *mask = malloc((size_t)m->n_layers);
	unsigned complete = 0, equal = 0;
	double worst = 0;

	for (unsigned i = 0; mask && i < s->n_req; i++) {
		const struct rc_request *r = &s->req[i];
		double d;

		if (r->req.got != r->req.tm.payload_len || !r->res.frags ||
		    r->res.got != r->res.tm.payload_len) {
			fprintf(stderr, "device %u request %llu: %u of %u RESULT bytes\n", r->device_id,
				(unsigned long long)r->request_id, r->res.got, r->res.tm.payload_len);
			continue;
		}
		complete++;
		d = rc_recompute(e, m, mask, r);
		equal += d <= RC_TOLERANCE;
		worst = fmax(worst, d);
	}
	free(mask);
	printf("{\"requests\": %u, \"results\": %u, \"equal\": %u, \"max_rel_err\": %g, "
	       "\"result_frags\": %lu, \"register_replies\": %lu, \"prices\": %lu, \"errors\": %lu, "
	       "\"busy\": %lu}\n", s->n_req, complete, equal, worst, s->by_type[DDS_MSG_RESULT],
	       s->by_type[DDS_MSG_REGISTER_REPLY], s->by_type[DDS_MSG_PRICE],
	       s->by_type[DDS_MSG_ERROR], s->by_type[DDS_MSG_BUSY]);
	return s->n_req > 0 && complete == s->n_req && equal == s->n_req ? 0 : 1;
}

static void rc_free(struct rc_state *s)
{
	for (unsigned i = 0; i < s->n_req; i++) {
		free(s->req[i].req.buf);
		free(s->req[i].res.buf);
	}
}

/* usage: reply_check KEYHEX64 MODEL.json SEED REQUEST_RECORDS REPLY_RECORDS (SEED: the model's
 * seed in the server's config). Exit 0 when every check passes, 1 when one fails, 2 on usage. */
int main(int argc, char **argv)
{
	static struct rc_state s;
	const struct dds_engine_opts eo = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_REF};
	struct dds_err err = {{0}};
	struct dds_model *m = NULL;
	struct dds_engine *e = NULL;
	int rc = 1;

	if (argc != 6 || dds_proto_key_parse(argv[1], strlen(argv[1]), s.key)) {
		fprintf(stderr, "usage: reply_check KEYHEX64 MODEL.json SEED REQUEST_RECORDS "
			"REPLY_RECORDS\n");
		return 2;
	}
	if (dds_model_load(argv[2], NULL, strtoull(argv[3], NULL, 10), &m, &err) ||
	    !(e = dds_engine_create(m, &eo, &err)))
		fprintf(stderr, "reply_check: %s\n", err.msg);
	else if (!rc_file(&s, argv[4], false) && !rc_file(&s, argv[5], true))
		rc = rc_report(&s, m, e);
	rc_free(&s);
	dds_engine_free(e);
	dds_model_free(m);
	return rc;
}
