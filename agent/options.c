/* options.c: dds-agent's command line (docs/agent.md lists every flag). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

void dds_agent_usage(FILE *f)
{
	fprintf(f,
		"usage: dds-agent --server IP[:PORT] --device-id N (--key HEX64 | --key-file F)\n"
		"                 --model MODEL.json [--weights F | --seed S] [--requests N]\n"
		"                 [--interval-ms M] [--rule momentum|exact] [--x0 X] [--lambda L]\n"
		"                 [--calibration FILE] [--uplink-mbps M | --uplink-start-mbps M]\n"
		"                 [--probe-every N] [--mtu N] [--timeout-ms T] [--retries K]\n"
		"                 [--threads N] [--verify] [--json]\n"
		"exit: 0 done (or stopped by SIGINT/SIGTERM), 1 requests lost/refused or a result\n"
		"differed, 2 usage, 3 setup failed (model, calibration, network, registration).\n"
		"docs/agent.md describes every flag.\n");
}

static int bad_opt(const char *name, const char *val, const char *want)
{
	fprintf(stderr, "dds-agent: --%s '%s': %s\n", name, val, want);
	return -1;
}

static int parse_long(const char *name, const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (end == s || *end || errno || v < lo || v > hi) {
		char want[96];

		snprintf(want, sizeof(want), "want an integer in %ld..%ld", lo, hi);
		return bad_opt(name, s, want);
	}
	*out = v;
	return 0;
}

static int parse_pos(const char *name, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || !(v > 0))
		return bad_opt(name, s, "want a finite number > 0");
	*out = v;
	return 0;
}

/* A key as 64 hex digits; trailing spaces and line ends (a key file's line) are ignored. */
static int parse_key(const char *s, uint8_t *key)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		n--;
	return dds_proto_key_parse(s, n, key);
}

static int read_key_file(const char *path, uint8_t *key)
{
	char buf[160] = "";
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "dds-agent: --key-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (parse_key(buf, key))
		return bad_opt("key-file", path, "want 64 hex digits on the first line");
	return 0;
}

static int parse_server(const char *s, struct dds_agent_opts *o)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	long port = 9000;

	if (n == 0 || n >= sizeof(o->server_ip))
		return bad_opt("server", s, "want IPv4[:PORT]");
	memcpy(o->server_ip, s, n);
	o->server_ip[n] = 0;
	if (colon && parse_long("server", colon + 1, 1, 65535, &port))
		return -1;
	o->port = (int)port;
	return 0;
}

/* One option; returns 0, or -1 after printing why. */
static int set_opt(struct dds_agent_opts *o, int c, const char *arg)
{
	long v;

	switch (c) {
	case 's': return parse_server(arg, o);
	case 'd':
		if (parse_long("device-id", arg, 0, UINT32_MAX, &v))
			return -1;
		o->device_id = (uint32_t)v;
		o->have_id = true;
		return 0;
	case 'k':
		o->have_key = true;
		return parse_key(arg, o->key) ? bad_opt("key", "...", "want 64 hex digits") : 0;
	case 'K': o->have_key = true; return read_key_file(arg, o->key);
	case 'm': o->model = arg; return 0;
	case 'w': o->weights = arg; return 0;
	case 'S':
		if (parse_long("seed", arg, 0, LONG_MAX, &v))
			return -1;
		o->seed = (uint64_t)v;
		o->have_seed = true;
		return 0;
	case 'n': return parse_long("requests", arg, 0, LONG_MAX, &o->requests);
	case 'i': return parse_long("interval-ms", arg, 0, 3600000, &o->interval_ms);
	case 'r':
		if (strcmp(arg, "momentum") && strcmp(arg, "exact"))
			return bad_opt("rule", arg, "want momentum or exact");
		o->rule = strcmp(arg, "exact") ? DDS_DEVICE_MOMENTUM : DDS_DEVICE_EXACT;
		return 0;
	case 'x': return parse_pos("x0", arg, &o->x0);
	case 'l': return parse_pos("lambda", arg, &o->lambda);
	case 'c': o->calibration = arg; return 0;
	case 'u': return parse_pos("uplink-mbps", arg, &o->uplink_mbps);
	case 'U':
		o->have_uplink_start = true;
		return parse_pos("uplink-start-mbps", arg, &o->uplink_start_mbps);
	case 'P': return parse_long("probe-every", arg, 0, 1000000, &o->probe_every);
	case 'M': return parse_long("mtu", arg, 576, 65535, &o->mtu);
	case 't': return parse_long("timeout-ms", arg, 1, 600000, &o->timeout_ms);
	case 'R': return parse_long("retries", arg, 0, 1000, &o->retries);
	case 'T': return parse_long("threads", arg, 1, 256, &o->threads);
	case 'v': o->verify = true; return 0;
	case 'j': o->json = true; return 0;
	default: return -1;
	}
}

int dds_agent_parse_opts(int argc, char **argv, struct dds_agent_opts *o)
{
	static const struct option lo[] = {
		{"server", required_argument, NULL, 's'}, {"device-id", required_argument, NULL, 'd'},
		{"key", required_argument, NULL, 'k'}, {"key-file", required_argument, NULL, 'K'},
		{"model", required_argument, NULL, 'm'}, {"weights", required_argument, NULL, 'w'},
		{"seed", required_argument, NULL, 'S'}, {"requests", required_argument, NULL, 'n'},
		{"interval-ms", required_argument, NULL, 'i'}, {"rule", required_argument, NULL, 'r'},
		{"x0", required_argument, NULL, 'x'}, {"lambda", required_argument, NULL, 'l'},
		{"calibration", required_argument, NULL, 'c'},
		{"uplink-mbps", required_argument, NULL, 'u'}, {"mtu", required_argument, NULL, 'M'},
		{"uplink-start-mbps", required_argument, NULL, 'U'},
		{"probe-every", required_argument, NULL, 'P'},
		{"timeout-ms", required_argument, NULL, 't'}, {"retries", required_argument, NULL, 'R'},
		{"threads", required_argument, NULL, 'T'}, {"verify", no_argument, NULL, 'v'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	*o = (struct dds_agent_opts){.seed = 1, .requests = 10, .rule = DDS_DEVICE_MOMENTUM,
				     .x0 = 1.0, .lambda = 1.0, .mtu = 1500, .timeout_ms = 1000,
				     .retries = 3, .threads = 1, .uplink_start_mbps = 100,
				     .probe_every = 16};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (set_opt(o, c, optarg))
			return -1;
	}
	if (optind < argc)
		return bad_opt("", argv[optind], "unexpected argument");
	if (!o->server_ip[0] || !o->have_id || !o->have_key || !o->model) {
		fprintf(stderr, "dds-agent: --server, --device-id, --key (or --key-file) and --model "
			"are required\n");
		return -1;
	}
	if (o->weights && o->have_seed)
		return bad_opt("seed", "", "--weights and --seed exclude each other");
	if (o->uplink_mbps > 0 && o->have_uplink_start)
		return bad_opt("uplink-start-mbps", "", "--uplink-mbps fixes the uplink: nothing to "
			       "start an estimate from");
	return 0;
}
