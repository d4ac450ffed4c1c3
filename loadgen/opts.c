/* opts.c: dds-loadgen's command line and the devices, keys, server and models read from a dds-server config. */
#include "lg_int.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char default_key[] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

void lg_opts_usage(FILE *f)
{
	fprintf(f,
		"usage: dds-loadgen --models A.json[,B.json...] [options] [--dpdk [--port N] -- EAL-ARGS]\n"
		"       (docs/loadgen.md)\n"
		"  devices:  --devices N (100)  --config node.json  --first-id N (1)  --key HEX64\n"
		"            --mix W1,W2,...  --seed S (1)  --flops MIN:MAX (10e9:15e9)\n"
		"            --uplink-mbps MIN:MAX (1.1:100)  --downlink-mbps MIN:MAX (= uplink)\n"
		"            --rule momentum|exact  --lambda L (0.1)  --x0 X (1)  --x-max X (100)\n"
		"  load:     --rate R[,R2...] (1/s per device, per model)  --arrival poisson|fixed  --closed\n"
		"            --think-ms T (0)  --duration S (10)  --warmup S (0)  --timeout-ms T (2000)\n"
		"            --busy-retries N (3)  --max-inflight N (64)  --mtu N (1500)\n"
		"  network:  --server IP[:PORT] (10.99.0.1:9000)  --bind IP\n"
		"  output:   --json FILE  --quiet  --pcap FILE  --pcap-only  --requests K (10)\n"
		"            --price P (1e-12)  --src-ip IP (10.99.0.2)  --src-port N (40000)\n"
		"            --src-mac MAC (02:00:00:00:00:02)  --dst-mac MAC (ff:ff:ff:ff:ff:ff)\n"
		"  dpdk:     --dpdk  --port N (the first)  --src-ip, --src-port (device i: +i)\n"
		"            --src-mac (the port's)  --dst-mac (by ARP)  -- EAL-ARGS (for rte_eal_init)\n");
}

static int num(const char *flag, const char *s, double lo, double hi, double *out, char *err,
	       size_t err_len)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !isfinite(v) || v < lo || v > hi)
		return dds_fail(err, err_len, "%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
	*out = v;
	return 0;
}

static int range(const char *flag, const char *s, double lo, double hi, double *a, double *b,
		 char *err, size_t err_len)
{
	char buf[128], *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (!colon)
		return dds_fail(err, err_len, "%s: '%s' is not MIN:MAX", flag, s);
	*colon = 0;
	if (num(flag, buf, lo, hi, a, err, err_len) || num(flag, colon + 1, lo, hi, b, err, err_len))
		return -1;
	if (*a > *b)
		return dds_fail(err, err_len, "%s: MIN %g is above MAX %g", flag, *a, *b);
	return 0;
}

static int ipv4(const char *flag, const char *s, uint32_t *ip, char *err, size_t err_len)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return dds_fail(err, err_len, "%s: '%s' is not an IPv4 address", flag, s);
	*ip = a.s_addr;
	return 0;
}

static int ip_port(const char *flag, const char *s, uint32_t *ip, uint16_t *port, char *err,
		   size_t err_len)
{
	char buf[64], *colon;
	double p = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (colon) {
		*colon = 0;
		if (num(flag, colon + 1, 1, 65535, &p, err, err_len) || p != floor(p))
			return dds_fail(err, err_len, "%s: port '%s' is not in 1..65535", flag, colon + 1);
		*port = (uint16_t)p;
	}
	return ipv4(flag, buf, ip, err, err_len);
}

static int mac(const char *flag, const char *s, uint8_t *m, char *err, size_t err_len)
{
	unsigned b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return dds_fail(err, err_len, "%s: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)",
			       flag, s);
	for (int i = 0; i < 6; i++)
		m[i] = (uint8_t)b[i];
	return 0;
}

static int hexkey(const char *what, const char *s, uint8_t *key, char *err, size_t err_len)
{
	if (dds_proto_key_parse(s, strlen(s), key))
		return dds_fail(err, err_len, "%s: a key is 64 hex digits", what);
	return 0;
}

/* Split a comma list into at most LG_MAX_MODELS strdup'ed items. */
static int list(const char *flag, const char *s, char **items, int *n, char *err, size_t err_len)
{
	char *copy = strdup(s), *save = NULL;

	*n = 0;
	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
		if (*n == LG_MAX_MODELS) {
			free(copy);
			return dds_fail(err, err_len, "%s: at most %d entries", flag, LG_MAX_MODELS);
		}
		items[(*n)++] = strdup(t);
	}
	free(copy);
	if (!*n)
		return dds_fail(err, err_len, "%s: empty list", flag);
	return 0;
}

static int model_list(struct lg_opts *o, const char *s, char *err, size_t err_len)
{
	for (int k = 0; k < o->n_models; k++)
		free(o->models[k]);
	return list("--models", s, o->models, &o->n_models, err, err_len);
}

/* A comma list of numbers in [lo, hi] into v[], their count into *n. */
static int num_list(const char *flag, const char *s, double lo, double hi, double *v, int *n,
		    char *err, size_t err_len)
{
	char *items[LG_MAX_MODELS];
	int rc = list(flag, s, items, n, err, err_len);

	for (int k = 0; k < *n; k++) {
		if (!rc)
			rc = num(flag, items[k], lo, hi, &v[k], err, err_len);
		free(items[k]);
	}
	return rc;
}

static int mix_list(struct lg_opts *o, const char *s, int *n_mix, char *err, size_t err_len)
{
	return num_list("--mix", s, 0, 1e9, o->mix, n_mix, err, err_len);
}

/* One rate for every model, or one per model. */
static int rate_list(struct lg_opts *o, const char *s, char *err, size_t err_len)
{
	if (num_list("--rate", s, 1e-6, 1e6, o->rate, &o->n_rate, err, err_len))
		return -1;
	for (int k = o->n_rate; o->n_rate == 1 && k < LG_MAX_MODELS; k++)
		o->rate[k] = o->rate[0];
	return 0;
}

/* The devices (first n), the server address and the models of a dds-server config. */
static int read_config(struct lg_opts *o, bool server_set, char *err, size_t err_len)
{
	json_error_t je;
	json_t *root = json_load_file(o->config, 0, &je), *devs, *v;
	char *dir = NULL;
	int rc = -1;
	size_t i;

	if (!root)
		return dds_fail(err, err_len, "--config %s: line %d: %s", o->config, je.line, je.text);
	devs = json_object_get(root, "devices");
	if (!json_is_array(devs) || json_array_size(devs) < (size_t)o->n_devices) {
		dds_fail(err, err_len, "--config %s: %zu devices, --devices %d needs as many",
			o->config, json_is_array(devs) ? json_array_size(devs) : 0, o->n_devices);
		goto out;
	}
	for (i = 0; i < (size_t)o->n_devices; i++) {
		json_t *d = json_array_get(devs, i), *id = json_object_get(d, "id");
		const char *key = json_string_value(json_object_get(d, "key"));

		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) > UINT32_MAX || !key) {
			dds_fail(err, err_len, "--config %s: devices[%zu] needs an id and a key",
				o->config, i);
			goto out;
		}
		o->ids[i] = (uint32_t)json_integer_value(id);
		if (hexkey(o->config, key, o->keys[i], err, err_len))
			goto out;
	}
	v = json_object_get(json_object_get(root, "interface"), "ip");
	if (!server_set && json_is_string(v) &&
	    ipv4("--config interface.ip", json_string_value(v), &o->server_ip, err, err_len))
		goto out;
	v = json_object_get(json_object_get(root, "interface"), "udp_port");
	if (!server_set && json_is_integer(v))
		o->server_port = (uint16_t)json_integer_value(v);
	if (!o->n_models && json_is_array(json_object_get(root, "models"))) {
		dir = strdup(o->config);
		json_array_foreach(json_object_get(root, "models"), i, v) {
			const char *g = json_string_value(json_object_get(v, "graph"));
			char path[4096];

			if (!g || o->n_models == LG_MAX_MODELS)
				continue;
			snprintf(path, sizeof(path), "%s%s%s", g[0] == '/' ? "" : dirname(dir),
				 g[0] == '/' ? "" : "/", g);
			o->models[o->n_models++] = strdup(path);
		}
	}
	rc = 0;
out:
	free(dir);
	json_decref(root);
	return rc;
}

static void defaults(struct lg_opts *o)
{
	*o = (struct lg_opts){
		.n_devices = 100, .seed = 1, .flops_min = 10e9, .flops_max = 15e9,
		.up_min = 1.1e6 / 8, .up_max = 100e6 / 8, .rule = DDS_DEVICE_MOMENTUM,
		.lambda = 0.1, .x0 = 1, .x_max = 100, .loop = LG_OPEN, .arrival = LG_POISSON,
		.mtu = 1500, .busy_retries = 3, .max_inflight = LG_MAX_INFLIGHT,
		.timeout_ms = 2000, .duration = 10, .server_port = 9000, .requests = 10,
		.price = 1e-12, .src_port = 40000, .port = -1,
		.src_mac = {0x02, 0, 0, 0, 0, 0x02}, .dst_mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	};
	for (int k = 0; k < LG_MAX_MODELS; k++)
		o->mix[k] = o->rate[k] = 1;
	inet_pton(AF_INET, "10.99.0.1", &o->server_ip);
	inet_pton(AF_INET, "10.99.0.2", &o->src_ip);
}

enum {
	O_DEVICES = 256, O_CONFIG, O_MODELS, O_MIX, O_SEED, O_FLOPS, O_UP, O_DOWN, O_RULE, O_LAMBDA,
	O_X0, O_XMAX, O_RATE, O_ARRIVAL, O_CLOSED, O_THINK, O_DURATION, O_WARMUP, O_TIMEOUT,
	O_RETRIES, O_INFLIGHT, O_MTU, O_SERVER, O_BIND, O_JSON, O_QUIET, O_PCAP, O_PCAP_ONLY,
	O_REQUESTS, O_PRICE, O_SRC_IP, O_SRC_PORT, O_SRC_MAC, O_DST_MAC, O_FIRST_ID, O_KEY, O_HELP,
	O_DPDK, O_PORT,
};

static const struct option long_opts[] = {
	{"devices", 1, NULL, O_DEVICES}, {"config", 1, NULL, O_CONFIG},
	{"models", 1, NULL, O_MODELS}, {"mix", 1, NULL, O_MIX}, {"seed", 1, NULL, O_SEED},
	{"flops", 1, NULL, O_FLOPS}, {"uplink-mbps", 1, NULL, O_UP},
	{"downlink-mbps", 1, NULL, O_DOWN}, {"rule", 1, NULL, O_RULE},
	{"lambda", 1, NULL, O_LAMBDA}, {"x0", 1, NULL, O_X0}, {"x-max", 1, NULL, O_XMAX},
	{"rate", 1, NULL, O_RATE}, {"arrival", 1, NULL, O_ARRIVAL}, {"closed", 0, NULL, O_CLOSED},
	{"think-ms", 1, NULL, O_THINK}, {"duration", 1, NULL, O_DURATION},
	{"warmup", 1, NULL, O_WARMUP}, {"timeout-ms", 1, NULL, O_TIMEOUT},
	{"busy-retries", 1, NULL, O_RETRIES}, {"max-inflight", 1, NULL, O_INFLIGHT},
	{"mtu", 1, NULL, O_MTU}, {"server", 1, NULL, O_SERVER}, {"bind", 1, NULL, O_BIND},
	{"json", 1, NULL, O_JSON}, {"quiet", 0, NULL, O_QUIET}, {"pcap", 1, NULL, O_PCAP},
	{"pcap-only", 0, NULL, O_PCAP_ONLY}, {"requests", 1, NULL, O_REQUESTS},
	{"price", 1, NULL, O_PRICE}, {"src-ip", 1, NULL, O_SRC_IP},
	{"src-port", 1, NULL, O_SRC_PORT}, {"src-mac", 1, NULL, O_SRC_MAC},
	{"dst-mac", 1, NULL, O_DST_MAC}, {"first-id", 1, NULL, O_FIRST_ID},
	{"key", 1, NULL, O_KEY}, {"help", 0, NULL, O_HELP}, {"dpdk", 0, NULL, O_DPDK},
	{"port", 1, NULL, O_PORT}, {NULL, 0, NULL, 0}};

/* One flag with its argument; the flags' state that spans flags is in *st. */
struct parse_state {
	bool server_set, key_set, src_ip_set, bind_set, port_set;
	int n_mix;
	uint8_t key[DDS_PROTO_KEY_LEN];
	double first_id;
};

static int one_flag(struct lg_opts *o, struct parse_state *st, int c, const char *a, char *err,
		    size_t err_len)
{
	double v = 0;
	int rc = 0;

	switch (c) {
	case O_DEVICES: rc = num("--devices", a, 1, 100000, &v, err, err_len); o->n_devices = (int)v; break;
	case O_CONFIG: o->config = a; break;
	case O_MODELS: rc = model_list(o, a, err, err_len); break;
	case O_MIX: rc = mix_list(o, a, &st->n_mix, err, err_len); break;
	case O_SEED: rc = num("--seed", a, 0, 1e18, &v, err, err_len); o->seed = (uint64_t)v; break;
	case O_FLOPS: rc = range("--flops", a, 1e3, 1e18, &o->flops_min, &o->flops_max, err, err_len); break;
	case O_UP:
		rc = range("--uplink-mbps", a, 1e-3, 1e6, &o->up_min, &o->up_max, err, err_len);
		o->up_min *= 1e6 / 8;
		o->up_max *= 1e6 / 8;
		break;
	case O_DOWN:
		rc = range("--downlink-mbps", a, 1e-3, 1e6, &o->down_min, &o->down_max, err, err_len);
		o->down_min *= 1e6 / 8;
		o->down_max *= 1e6 / 8;
		break;
	case O_RULE:
		if (!strcmp(a, "momentum"))
			o->rule = DDS_DEVICE_MOMENTUM;
		else if (!strcmp(a, "exact"))
			o->rule = DDS_DEVICE_EXACT;
		else
			rc = dds_fail(err, err_len, "--rule: '%s' is neither momentum nor exact", a);
		break;
	case O_LAMBDA: rc = num("--lambda", a, 1e-12, 1e12, &o->lambda, err, err_len); break;
	case O_X0: rc = num("--x0", a, 1e-12, 1e12, &o->x0, err, err_len); break;
	case O_XMAX: rc = num("--x-max", a, 1e-12, 1e12, &o->x_max, err, err_len); break;
	case O_RATE: rc = rate_list(o, a, err, err_len); break;
	case O_ARRIVAL:
		if (!strcmp(a, "poisson"))
			o->arrival = LG_POISSON;
		else if (!strcmp(a, "fixed"))
			o->arrival = LG_FIXED;
		else
			rc = dds_fail(err, err_len, "--arrival: '%s' is neither poisson nor fixed", a);
		break;
	case O_CLOSED: o->loop = LG_CLOSED; break;
	case O_THINK: rc = num("--think-ms", a, 0, 3.6e6, &o->think_ms, err, err_len); break;
	case O_DURATION: rc = num("--duration", a, 0.001, 86400, &o->duration, err, err_len); break;
	case O_WARMUP: rc = num("--warmup", a, 0, 86400, &o->warmup, err, err_len); break;
	case O_TIMEOUT: rc = num("--timeout-ms", a, 1, 600000, &o->timeout_ms, err, err_len); break;
	case O_RETRIES: rc = num("--busy-retries", a, 0, 1000, &v, err, err_len); o->busy_retries = (unsigned)v; break;
	case O_INFLIGHT: rc = num("--max-inflight", a, 1, LG_MAX_INFLIGHT, &v, err, err_len); o->max_inflight = (unsigned)v; break;
	case O_MTU: rc = num("--mtu", a, 576, 65535, &v, err, err_len); o->mtu = (unsigned)v; break;
	case O_SERVER: rc = ip_port("--server", a, &o->server_ip, &o->server_port, err, err_len); st->server_set = true; break;
	case O_BIND: rc = ipv4("--bind", a, &o->bind_ip, err, err_len); st->bind_set = true; break;
	case O_JSON: o->json = a; break;
	case O_QUIET: o->quiet = true; break;
	case O_PCAP: o->pcap = a; break;
	case O_PCAP_ONLY: o->pcap_only = true; break;
	case O_REQUESTS: rc = num("--requests", a, 1, 1e7, &v, err, err_len); o->requests = (unsigned)v; break;
	case O_PRICE: rc = num("--price", a, 1e-300, 1e300, &o->price, err, err_len); break;
	case O_SRC_IP: rc = ipv4("--src-ip", a, &o->src_ip, err, err_len); st->src_ip_set = true; break;
	case O_SRC_PORT: rc = num("--src-port", a, 1, 65535, &v, err, err_len); o->src_port = (uint16_t)v; break;
	case O_SRC_MAC: rc = mac("--src-mac", a, o->src_mac, err, err_len); o->src_mac_set = true; break;
	case O_DST_MAC: rc = mac("--dst-mac", a, o->dst_mac, err, err_len); o->dst_mac_set = true; break;
	case O_DPDK: o->dpdk = true; break;
	case O_PORT: rc = num("--port", a, 0, 65535, &v, err, err_len); o->port = (int)v; st->port_set = true; break;
	case O_FIRST_ID: rc = num("--first-id", a, 0, UINT32_MAX, &st->first_id, err, err_len); break;
	case O_KEY: rc = hexkey("--key", a, st->key, err, err_len); st->key_set = true; break;
	default: rc = dds_fail(err, err_len, "unknown or incomplete flag (see --help)"); break;
	}
	if (!rc && (v != floor(v)))
		rc = dds_fail(err, err_len, "'%s' must be a whole number", a);
	return rc;
}

/* The flags that go with --dpdk, and those that do not. */
static int check_dpdk(const struct lg_opts *o, const struct parse_state *st, char *err,
		      size_t err_len)
{
	if (!o->dpdk && o->eal_argc)
		return dds_fail(err, err_len, "the arguments after '--' are for DPDK's EAL: they need "
			       "--dpdk");
	if (!o->dpdk && st->port_set)
		return dds_fail(err, err_len, "--port needs --dpdk");
	if (!o->dpdk)
		return 0;
	if (o->pcap_only)
		return dds_fail(err, err_len, "--dpdk and --pcap-only exclude each other (--pcap-only "
			       "sends nothing)");
	if (st->bind_set)
		return dds_fail(err, err_len, "--dpdk and --bind exclude each other (with --dpdk the "
			       "devices send from --src-ip on the DPDK port)");
	if (o->mtu > 9600)
		return dds_fail(err, err_len, "--mtu %u: at most 9600 with --dpdk (a frame in one "
			       "mbuf)", o->mtu);
	if ((unsigned)o->src_port + (unsigned)o->n_devices - 1 > 65535)
		return dds_fail(err, err_len, "--src-port %u with --devices %d: ports past 65535 "
			       "(device i sends from --src-port + i)", o->src_port, o->n_devices);
#ifndef LG_HAVE_DPDK
	return dds_fail(err, err_len, "--dpdk: built without DPDK");
#else
	return 0;
#endif
}

/* Checks across flags, then the device ids and keys. */
static int finish(struct lg_opts *o, struct parse_state *st, char *err, size_t err_len)
{
	if (check_dpdk(o, st, err, err_len))
		return -1;
	if (o->pcap_only && !o->pcap)
		return dds_fail(err, err_len, "--pcap-only needs --pcap FILE");
	if (st->first_id + o->n_devices - 1 > UINT32_MAX)
		return dds_fail(err, err_len, "--first-id: ids past 2^32 - 1");
	if (o->pcap_only && o->bind_ip && !st->src_ip_set)
		o->src_ip = o->bind_ip;
	o->ids = calloc((unsigned)o->n_devices, sizeof(*o->ids));
	o->keys = calloc((unsigned)o->n_devices, sizeof(*o->keys));
	if (!o->ids || !o->keys)
		return dds_fail(err, err_len, "out of memory");
	if (!st->key_set)
		hexkey("key", default_key, st->key, NULL, 0);
	for (int i = 0; i < o->n_devices; i++) {
		o->ids[i] = (uint32_t)st->first_id + (uint32_t)i;
		memcpy(o->keys[i], st->key, DDS_PROTO_KEY_LEN);
	}
	if (o->config && read_config(o, st->server_set, err, err_len))
		return -1;
	if (!o->n_models)
		return dds_fail(err, err_len, "no models: give --models A.json[,B.json] (or --config "
			       "with models)");
	if (o->n_rate > 1 && o->n_rate != o->n_models)
		return dds_fail(err, err_len, "--rate has %d rates for %d models (give 1 or one per "
			       "model)", o->n_rate, o->n_models);
	if (st->n_mix && st->n_mix != o->n_models)
		return dds_fail(err, err_len, "--mix has %d weights for %d models", st->n_mix,
			       o->n_models);
	for (int k = 0; k < st->n_mix; k++)
		if (o->mix[k] > 0)
			return 0;
	return st->n_mix ? dds_fail(err, err_len, "--mix: every weight is 0") : 0;
}

int lg_opts_parse(int argc, char **argv, struct lg_opts *o, char *err, size_t err_len)
{
	struct parse_state st = {.first_id = 1};
	int c, ours = argc;

	defaults(o);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) { /* what follows is the EAL's (--dpdk) */
			ours = i;
			o->eal_argc = argc - i - 1;
			o->eal_argv = argv + i + 1;
			break;
		}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(ours, argv, "h", long_opts, NULL)) != -1) {
		if (c == 'h' || c == O_HELP)
			return 1;
		if (c == '?' || c == ':') {
			dds_fail(err, err_len, "unknown flag or missing value: '%s' (see --help)",
				argv[optind - 1]);
			return -1;
		}
		if (one_flag(o, &st, c, optarg, err, err_len))
			return -1;
	}
	if (optind < ours)
		return dds_fail(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
	return finish(o, &st, err, err_len);
}

void lg_opts_free(struct lg_opts *o)
{
	for (int k = 0; k < o->n_models; k++)
		free(o->models[k]);
	free(o->ids);
	free(o->keys);
	memset(o, 0, sizeof(*o));
}
