/* dp_client.c: a test device over kernel UDP: runs heads on the CPU engine, sends every split (or the listed ones), checks results bit-exact; also floods, stops and PRICE checks. */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dds_engine.h"
#include "dds_model.h"
#include "dds_proto.h"

struct client {
	int fd;
	uint32_t device;
	uint8_t key[DDS_PROTO_KEY_LEN];
	uint64_t next_id;
	size_t mtu;
	double price;
	struct dds_model *m;
	struct dds_engine *e;
	struct dds_proto_devtab *devs;
	struct dds_proto_rx *rx;
	int failures;
	size_t max_result_dgram; /* largest RESULT datagram received (UDP payload bytes) */
	unsigned prices;         /* PRICE messages received, rounds strictly increasing */
	uint64_t last_round;
};

#define FAIL(c, ...) (fprintf(stderr, "dp_client: FAIL: " __VA_ARGS__), (c)->failures++)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A PRICE: rounds must increase (the receiver drops older ones as replays) and carry p. */
static void on_price(struct client *c, const struct dds_proto_msg *m)
{
	if (c->prices && m->h.request_id <= c->last_round)
		FAIL(c, "PRICE round %lu after %lu\n", (unsigned long)m->h.request_id,
		     (unsigned long)c->last_round);
	if (m->u.price.price != c->price)
		FAIL(c, "PRICE price %g, want %g\n", m->u.price.price, c->price);
	c->prices++;
	c->last_round = m->h.request_id;
}

/* Receive one datagram (200 ms at most) into *ev; PRICE messages are taken here. Returns
 * false when nothing usable came. */
static bool receive(struct client *c, struct dds_proto_event *ev)
{
	static uint8_t buf[65536];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

	if (n <= 0)
		return false;
	dds_proto_rx_input(c->rx, buf, (size_t)n, now_ns(), ev);
	if (ev->reason == DDS_PROTO_OK && ev->msg.h.type == DDS_MSG_RESULT &&
	    (size_t)n > c->max_result_dgram)
		c->max_result_dgram = (size_t)n;
	if (ev->kind == DDS_EV_MESSAGE && ev->msg.h.type == DDS_MSG_PRICE) {
		on_price(c, &ev->msg);
		return false;
	}
	return ev->kind != DDS_EV_NONE;
}

/* Wait for one complete message or single-datagram reply for request `id`; 0 when it came. */
static int await(struct client *c, uint64_t id, struct dds_proto_event *ev)
{
	uint64_t deadline = now_ns() + 3000000000ull;

	while (now_ns() < deadline) {
		if (!receive(c, ev))
			continue;
		if (ev->msg.h.request_id == id)
			return 0;
		if (ev->kind == DDS_EV_COMPLETE)
			free(ev->buf);
	}
	return -1;
}

static void send_dgram(struct client *c, const uint8_t *d, size_t n)
{
	if (send(c->fd, d, n, 0) != (ssize_t)n)
		perror("dp_client: send");
}

static void do_register(struct client *c)
{
	struct dds_proto_hdr h = {.type = DDS_MSG_REGISTER, .device_id = c->device,
				  .request_id = ++c->next_id, .model_hash = c->m->hash};
	struct dds_proto_event ev;
	uint8_t d[256];

	send_dgram(c, d, dds_proto_encode_register(&h, (uint32_t)c->mtu, c->key, d, sizeof(d)));
	if (await(c, h.request_id, &ev) || ev.msg.h.type != DDS_MSG_REGISTER_REPLY)
		FAIL(c, "no REGISTER_REPLY\n");
	else if (ev.msg.u.reply.price != c->price)
		FAIL(c, "REGISTER_REPLY price %g, want %g\n", ev.msg.u.reply.price, c->price);
}

/* Send a request's fragments in a shuffled order, the first one twice (a duplicate). */
static void send_request(struct client *c, const struct dds_proto_hdr *h,
			 const struct dds_proto_tmsg *tm, const void *payload)
{
	unsigned count = dds_proto_frag_count(tm, c->mtu), order[4096];
	static uint8_t d[65536];

	for (unsigned i = 0; i < count && i < 4096; i++)
		order[i] = i;
	for (unsigned i = count - 1; i > 0 && i < 4096; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned i = 0; i <= count && count <= 4096; i++) {
		size_t n = dds_proto_encode_frag(h, tm, payload, order[i == count ? 0 : i], c->mtu,
						 c->key, d, sizeof(d));

		send_dgram(c, d, n);
	}
}

/* Values computed by the head (the first k layers) that a later layer reads: the cut. */
static int cut_of(const struct dds_model *m, int k, int *vals)
{
	int n = 0;

	for (int v = 0; v <= k; v++) {
		bool used = false;

		for (int l = k; l < m->n_layers && !used; l++)
			for (int j = 0; j < m->layers[l].n_in; j++)
				used |= m->layers[l].in[j] == v;
		if (used)
			vals[n++] = v;
	}
	return n;
}

static size_t fill_tm(const struct dds_model *m, const int *vals, int n, double x,
		      struct dds_proto_tmsg *tm)
{
	size_t total = 0;

	memset(tm, 0, sizeof(*tm));
	tm->value = x;
	tm->n_tensors = (uint16_t)n;
	for (int i = 0; i < n; i++) {
		const struct dds_shape *s = dds_model_value_shape(m, vals[i]);

		tm->t[i].value_id = (uint16_t)vals[i];
		tm->t[i].dtype = DDS_DTYPE_F32;
		tm->t[i].ndim = (uint8_t)s->ndim;
		for (int d = 0; d < s->ndim; d++)
			tm->t[i].dim[d] = (uint32_t)s->d[d];
		total += dds_shape_numel(s) * sizeof(float);
	}
	tm->payload_len = (uint32_t)total;
	return total;
}

/* One request for split k: head here, tail there, compared with a whole run here. */
static void one_request(struct client *c, int k, uint64_t model_hash, int want_reason)
{
	const struct dds_model *m = c->m;
	size_t in_n = dds_shape_numel(&m->in_shape), out_bytes = m->layers[m->output].out_bytes;
	uint8_t *mask = calloc((size_t)m->n_layers, 1), *payload;
	float *expect = malloc(out_bytes), *in = dds_engine_value(c->e, 0);
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = c->device,
				  .request_id = ++c->next_id, .model_hash = model_hash};
	struct dds_proto_tmsg tm;
	struct dds_proto_event ev;
	struct dds_err err;
	int vals[DDS_PROTO_MAX_TENSORS] = {0}, n;
	size_t len, off = 0;

	for (size_t i = 0; i < in_n; i++)
		in[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
	for (int l = 0; l < k; l++)
		mask[l] = 1;
	n = cut_of(m, k, vals);
	if (want_reason == DDS_DROP_BAD_SPLIT) { /* the input and layer 0's output: input unused */
		n = 2;
		vals[0] = 0;
		vals[1] = 1;
	}
	len = fill_tm(m, vals, n, 2.5, &tm);
	payload = malloc(len);
	if (k > 0 && dds_engine_run(c->e, mask, 1, &err))
		FAIL(c, "head %d: %s\n", k, err.msg);
	for (int i = 0; i < n; i++) {
		size_t b = dds_shape_numel(dds_model_value_shape(m, vals[i])) * sizeof(float);

		memcpy(payload + off, dds_engine_value(c->e, vals[i]), b);
		off += b;
	}
	if (dds_engine_run(c->e, NULL, 1, &err))
		FAIL(c, "whole run: %s\n", err.msg);
	memcpy(expect, dds_engine_value(c->e, m->output + 1), out_bytes);
	send_request(c, &h, &tm, payload);
	if (await(c, h.request_id, &ev)) {
		FAIL(c, "split %d request %lu: no answer\n", k, (unsigned long)h.request_id);
	} else if (want_reason) {
		if (ev.msg.h.type != DDS_MSG_ERROR || ev.msg.u.err.reason != want_reason)
			FAIL(c, "split %d: want ERROR %s, got type %u\n", k,
			     dds_proto_reason_name(want_reason), ev.msg.h.type);
	} else if (ev.kind != DDS_EV_COMPLETE) {
		FAIL(c, "split %d: got type %u (reason %u), want RESULT\n", k, ev.msg.h.type,
		     ev.msg.h.type == DDS_MSG_ERROR ? ev.msg.u.err.reason : 0);
	} else {
		if (ev.len != out_bytes || memcmp(ev.buf, expect, out_bytes))
			FAIL(c, "split %d: result differs from the whole-model run\n", k);
		if (ev.msg.u.frag.tm.value != c->price)
			FAIL(c, "split %d: RESULT price %g, want %g\n", k, ev.msg.u.frag.tm.value,
			     c->price);
		free(ev.buf);
	}
	free(payload);
	free(expect);
	free(mask);
}

/* The raw input of a whole-model request (random), its descriptor and the expected output. */
static size_t whole_request(struct client *c, struct dds_proto_tmsg *tm, float *expect)
{
	const struct dds_model *m = c->m;
	float *in = dds_engine_value(c->e, 0);
	size_t in_n = dds_shape_numel(&m->in_shape);
	int input = 0;
	struct dds_err err;

	for (size_t i = 0; i < in_n; i++)
		in[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
	fill_tm(m, &input, 1, 2.5, tm);
	if (dds_engine_run(c->e, NULL, 1, &err))
		FAIL(c, "whole run: %s\n", err.msg);
	memcpy(expect, dds_engine_value(c->e, m->output + 1), m->layers[m->output].out_bytes);
	return in_n * sizeof(float);
}

/* --flood N: N whole-model requests sent back to back, then every answer collected: each must
 * be a RESULT equal to the whole-model run or a BUSY with retry_ms > 0; both must occur. */
static void flood(struct client *c, int n)
{
	size_t out_bytes = c->m->layers[c->m->output].out_bytes;
	float *expect = malloc(out_bytes);
	bool *answered = calloc((size_t)n, 1);
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = c->device,
				  .model_hash = c->m->hash};
	struct dds_proto_tmsg tm;
	struct dds_proto_event ev;
	uint64_t first = c->next_id + 1, deadline;
	int results = 0, busy = 0, other = 0;

	whole_request(c, &tm, expect);
	for (int i = 0; i < n; i++) {
		h.request_id = ++c->next_id;
		send_request(c, &h, &tm, dds_engine_value(c->e, 0));
	}
	deadline = now_ns() + 5000000000ull;
	while (results + busy + other < n && now_ns() < deadline) {
		uint64_t id;

		if (!receive(c, &ev))
			continue;
		id = ev.msg.h.request_id;
		if (id >= first && id < first + (uint64_t)n && !answered[id - first]) {
			answered[id - first] = true;
			if (ev.kind == DDS_EV_COMPLETE && ev.len == out_bytes &&
			    !memcmp(ev.buf, expect, out_bytes))
				results++;
			else if (ev.msg.h.type == DDS_MSG_BUSY && ev.msg.u.busy.retry_ms > 0)
				busy++;
			else
				other++;
		}
		if (ev.kind == DDS_EV_COMPLETE)
			free(ev.buf);
	}
	printf("{\"flood\": %d, \"results\": %d, \"busy\": %d, \"other\": %d}\n", n, results,
	       busy, other);
	if (results + busy != n || results == 0 || busy == 0)
		FAIL(c, "flood: want only exact RESULTs and BUSYs, some of each\n");
	free(answered);
	free(expect);
}

/* --stop-probe: a whole request, then only the first fragment of a second one, then "ready"
 * on stdout; the node is stopped meanwhile. The first must still get its RESULT (or ERROR
 * shutting_down with --stop-refuses), the second ERROR shutting_down. */
static void stop_probe(struct client *c, bool refuses)
{
	size_t out_bytes = c->m->layers[c->m->output].out_bytes, n;
	float *expect = malloc(out_bytes);
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = c->device,
				  .model_hash = c->m->hash};
	struct dds_proto_tmsg tm;
	struct dds_proto_event ev;
	static uint8_t d[65536];
	uint64_t whole = ++c->next_id, partial = ++c->next_id, deadline;
	int got_whole = 0, got_partial = 0;

	whole_request(c, &tm, expect);
	if (dds_proto_frag_count(&tm, c->mtu) < 2)
		FAIL(c, "stop probe: the request fits in one fragment at MTU %zu\n", c->mtu);
	h.request_id = whole;
	send_request(c, &h, &tm, dds_engine_value(c->e, 0));
	h.request_id = partial;
	n = dds_proto_encode_frag(&h, &tm, dds_engine_value(c->e, 0), 0, c->mtu, c->key, d,
				  sizeof(d));
	send_dgram(c, d, n);
	printf("ready\n");
	fflush(stdout);
	deadline = now_ns() + 10000000000ull;
	while ((!got_whole || !got_partial) && now_ns() < deadline) {
		bool stop_err;

		if (!receive(c, &ev))
			continue;
		stop_err = ev.msg.h.type == DDS_MSG_ERROR &&
			   ev.msg.u.err.reason == DDS_DROP_SHUTTING_DOWN;
		if (ev.msg.h.request_id == partial)
			got_partial = stop_err ? 1 : -1;
		else if (ev.msg.h.request_id == whole)
			got_whole = (refuses ? stop_err
					     : ev.kind == DDS_EV_COMPLETE && ev.len == out_bytes &&
						       !memcmp(ev.buf, expect, out_bytes)) ? 1 : -1;
		if (ev.kind == DDS_EV_COMPLETE)
			free(ev.buf);
	}
	printf("{\"whole\": \"%s\", \"partial\": \"%s\"}\n",
	       got_whole > 0 ? (refuses ? "shutting_down" : "result") : "wrong or none",
	       got_partial > 0 ? "shutting_down" : "wrong or none");
	if (got_whole <= 0 || got_partial <= 0)
		FAIL(c, "stop probe: want %s for the whole request, shutting_down for the partial\n",
		     refuses ? "shutting_down" : "the RESULT");
	free(expect);
}

/* Wait (5 s at most) until `want` PRICE messages came in all. */
static void await_prices(struct client *c, unsigned want)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	struct dds_proto_event ev;

	while (c->prices < want && now_ns() < deadline)
		if (receive(c, &ev) && ev.kind == DDS_EV_COMPLETE)
			free(ev.buf);
	if (c->prices < want)
		FAIL(c, "%u PRICE messages, want %u\n", c->prices, want);
}

static int setup(struct client *c, const char *server, int port, const char *model,
		 uint64_t seed)
{
	struct dds_proto_rx_config rc = {.role = DDS_ROLE_DEVICE, .max_slots = 16,
					 .max_slots_per_device = 16, .max_bytes = 64 << 20,
					 .max_bytes_per_device = 64 << 20,
					 .max_payload = 64 << 20, .timeout_ns = 3000000000ull};
	struct dds_engine_opts o = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_FAST};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {0, 200000};
	struct dds_err err;

	if (dds_model_load(model, NULL, seed, &c->m, &err) ||
	    !(c->e = dds_engine_create(c->m, &o, &err))) {
		fprintf(stderr, "dp_client: %s\n", err.msg);
		return -1;
	}
	c->devs = dds_proto_devtab_new(4);
	dds_proto_devtab_add(c->devs, c->device, c->key);
	c->rx = dds_proto_rx_new(&rc, c->devs, NULL);
	c->fd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, server, &sa.sin_addr);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!c->rx || c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("dp_client: setup");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'}, {"port", required_argument, NULL, 'p'},
		{"device", required_argument, NULL, 'd'}, {"key", required_argument, NULL, 'k'},
		{"model", required_argument, NULL, 'm'},  {"seed", required_argument, NULL, 'S'},
		{"reps", required_argument, NULL, 'r'},   {"mtu", required_argument, NULL, 'M'},
		{"price", required_argument, NULL, 'P'},  {"flood", required_argument, NULL, 'F'},
		{"stop-probe", no_argument, NULL, 'T'},   {"stop-refuses", no_argument, NULL, 'R'},
		{"prices", required_argument, NULL, 'Q'}, {"split", required_argument, NULL, 'L'},
		{NULL, 0, NULL, 0}};
	struct client c = {.device = 1, .mtu = 1500, .price = 1.0};
	const char *server = "10.99.0.1", *model = NULL, *key = NULL;
	int port = 9000, reps = 2, o, served = 0, flood_n = 0, prices = 0;
	int splits[64], n_splits = 0; /* --split K,K,...: only these (heads of K layers), in turn */
	bool probe = false, refuses = false;
	uint64_t seed = 1;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': server = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'd': c.device = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'k': key = optarg; break;
		case 'm': model = optarg; break;
		case 'S': seed = strtoull(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg); break;
		case 'M': c.mtu = strtoul(optarg, NULL, 0); break;
		case 'P': c.price = strtod(optarg, NULL); break;
		case 'F': flood_n = atoi(optarg); break;
		case 'T': probe = true; break;
		case 'R': refuses = true; break;
		case 'Q': prices = atoi(optarg); break;
		case 'L':
			for (char *t = strtok(optarg, ","); t && n_splits < 64; t = strtok(NULL, ","))
				splits[n_splits++] = atoi(t);
			break;
		default: return 2;
		}
	}
	if (!model || !key || dds_proto_key_parse(key, strlen(key), c.key)) {
		fprintf(stderr, "usage: dp_client --model JSON --key HEX64 [--server IP] [--port N] "
			"[--device ID] [--seed N] [--reps N] [--mtu N] [--price P] [--prices N]\n"
			"       [--flood N | --stop-probe [--stop-refuses] | --split K,K,...]\n");
		return 2;
	}
	srand(12345);
	if (setup(&c, server, port, model, seed))
		return 1;
	for (int i = 0; i < n_splits; i++)
		if (splits[i] < 0 || splits[i] >= c.m->n_layers) {
			fprintf(stderr, "dp_client: --split %d: want 0..%d (layers in the head)\n",
				splits[i], c.m->n_layers - 1);
			return 2;
		}
	do_register(&c);
	if (flood_n > 0) {
		flood(&c, flood_n);
	} else if (probe) {
		stop_probe(&c, refuses);
	} else if (n_splits) { /* reps rounds of the listed splits, in turn */
		for (int r = 0; r < reps; r++)
			for (int i = 0; i < n_splits; i++, served++)
				one_request(&c, splits[i], c.m->hash, DDS_PROTO_OK);
	} else {
		for (int k = 0; k < c.m->n_layers; k++)
			for (int r = 0; r < reps; r++, served++)
				one_request(&c, k, c.m->hash, DDS_PROTO_OK);
		one_request(&c, 0, c.m->hash ^ 1, DDS_DROP_UNKNOWN_MODEL);
		one_request(&c, 1, c.m->hash, DDS_DROP_BAD_SPLIT);
	}
	await_prices(&c, (unsigned)prices);
	if (c.max_result_dgram + DDS_PROTO_IP_UDP_OVERHEAD > c.mtu)
		FAIL(&c, "a RESULT of %zu bytes of IP exceeds the rx_mtu %zu\n",
		     c.max_result_dgram + DDS_PROTO_IP_UDP_OVERHEAD, c.mtu);
	if (!flood_n && !probe)
		printf("{\"model\": \"%s\", \"requests\": %d, \"splits\": %d, "
		       "\"result_bytes\": %zu, \"max_result_ip\": %zu, \"prices\": %u, "
		       "\"last_round\": %lu, \"failures\": %d}\n", c.m->name, served, c.m->n_layers,
		       c.m->layers[c.m->output].out_bytes,
		       c.max_result_dgram + DDS_PROTO_IP_UDP_OVERHEAD, c.prices,
		       (unsigned long)c.last_round, c.failures);
	dds_proto_rx_free(c.rx);
	dds_proto_devtab_free(c.devs);
	dds_engine_free(c.e);
	dds_model_free(c.m);
	close(c.fd);
	return c.failures ? 1 : 0;
}
