/* dds-ctl: asks a running dds-server for its state through DPDK's telemetry socket and prints the JSON reply. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_REPLY_MAX (64 * 1024)

static void usage(FILE *to)
{
	fprintf(to,
		"usage: dds-ctl [-p PREFIX | -s SOCKET] [COMMAND [PARAMS]]\n"
		"       dds-ctl [-p PREFIX | -s SOCKET] latency [--json] [--reset] [--model NAME]\n"
		"       dds-ctl [-p PREFIX | -s SOCKET] rates [--interval S] [--count N] [--json]\n"
		"  COMMAND   counters (default), state, proto, models, pricing, sched, queue N, or any\n"
		"            telemetry command starting with '/' (\"/\" lists them all)\n"
		"  latency   server-side latency per stage since the last reset, as a table in\n"
		"            microseconds (--json: as JSON; --reset: print, then start afresh for every\n"
		"            model; --model: one model's requests only, by its name in `models`)\n"
		"  rates     the counters that grew over each interval (default 1 s), per second; --count\n"
		"            intervals (default 1; 0: until interrupted); --json: one JSON line each\n"
		"            with interval_s, delta and per_s of every counter\n"
		"  -p PREFIX the server's EAL --file-prefix (default: dds)\n"
		"  -s SOCKET the telemetry socket's path (default: <runtime dir>/<prefix>/dpdk_telemetry.v2)\n"
		"Prints the reply as JSON on stdout; exits 1 if the server cannot be reached, 3 if the\n"
		"command is unknown or failed (the reply's value is null).\n");
}

/* DPDK's runtime directory: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk. */
static void socket_path(char *out, size_t n, const char *prefix)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *base = getuid() == 0 ? "/var/run" : xdg ? xdg : "/tmp";

	snprintf(out, n, "%s/dpdk/%s/dpdk_telemetry.v2", base, prefix);
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	if (fd < 0 || strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "dds-ctl: %s: %s\n", path, fd < 0 ? strerror(errno) : "path too long");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "dds-ctl: cannot reach the server at %s: %s (is it running, with this "
			"--file-prefix?)\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* One message from the server into reply, NUL-terminated: -1 when the socket closed. */
static int ctl_recv(int fd, char *reply)
{
	ssize_t n = recv(fd, reply, CTL_REPLY_MAX - 1, 0);

	if (n <= 0)
		return -1;
	reply[n] = '\0';
	return 0;
}

/* cmd and its reply; the connection's greeting must have been read (ctl_recv). */
static int ctl_cmd(int fd, const char *cmd, char *reply)
{
	return send(fd, cmd, strlen(cmd), 0) < 0 ? -1 : ctl_recv(fd, reply);
}

/* The value object of a reply {"/dds/cmd": {...}} (owned by root), or NULL. */
static json_t *reply_dict(json_t *root)
{
	json_t *dict = json_is_object(root) ? json_object_iter_value(json_object_iter(root)) : NULL;

	return json_is_object(dict) ? dict : NULL;
}

/* The latency reply's flat keys "<stage>_<figure>" (ns) as a table or as JSON in us. */
static const char *const lat_figures[] = {"p50", "p90", "p99", "p999", "max", "mean"};
#define N_FIGURES (sizeof(lat_figures) / sizeof(lat_figures[0]))

static double lat_us(json_t *dict, const char *stage, const char *figure)
{
	char key[96];

	snprintf(key, sizeof(key), "%s_%s_ns", stage, figure);
	return (double)json_integer_value(json_object_get(dict, key)) / 1000.0;
}

static int print_latency(const char *reply, bool as_json)
{
	json_t *root = json_loads(reply, 0, NULL), *dict, *v, *out = json_object();
	const char *key;
	char *text;

	dict = reply_dict(root);
	if (!dict) {
		fprintf(stderr, "dds-ctl: latency: unexpected reply: %s\n", reply);
		json_decref(root);
		json_decref(out);
		return 3;
	}
	if (!as_json)
		printf("%-12s %10s %11s %11s %11s %11s %11s   (us)\n", "stage", "count", "p50", "p90",
		       "p99", "p99.9", "max");
	json_object_foreach(dict, key, v) {
		size_t n = strlen(key);
		char stage[64];
		json_t *row;

		if (n < 7 || strcmp(key + n - 6, "_count") || n - 6 >= sizeof(stage))
			continue;
		snprintf(stage, sizeof(stage), "%.*s", (int)(n - 6), key);
		if (!as_json) {
			printf("%-12s %10lld %11.3f %11.3f %11.3f %11.3f %11.3f\n", stage,
			       (long long)json_integer_value(v), lat_us(dict, stage, "p50"),
			       lat_us(dict, stage, "p90"), lat_us(dict, stage, "p99"),
			       lat_us(dict, stage, "p999"), lat_us(dict, stage, "max"));
			continue;
		}
		row = json_object();
		json_object_set_new(row, "count", json_integer(json_integer_value(v)));
		for (size_t f = 0; f < N_FIGURES; f++) {
			char name[32];

			snprintf(name, sizeof(name), "%s_us", lat_figures[f]);
			json_object_set_new(row, name, json_real(lat_us(dict, stage, lat_figures[f])));
		}
		json_object_set_new(out, stage, row);
	}
	if (as_json && (text = json_dumps(out, JSON_REAL_PRECISION(12)))) {
		printf("%s\n", text);
		free(text);
	}
	json_decref(out);
	json_decref(root);
	return 0;
}

/* ---- rates: two readings of /dds/counters, the difference per second ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The counters object of a /dds/counters reply (owned by *root), or NULL. */
static json_t *ctl_counters(int fd, char *reply, json_t **root)
{
	*root = ctl_cmd(fd, "/dds/counters", reply) == 0 ? json_loads(reply, 0, NULL) : NULL;
	return reply_dict(*root);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One interval's output: every counter's delta and rate (JSON), or the ones that grew, sorted. */
static void print_rates(json_t *before, json_t *after, double dt, bool as_json)
{
	const char *key, *keys[512];
	json_t *v, *delta = json_object(), *per_s = json_object(), *out = json_object();
	size_t n = 0;
	char *text;

	json_object_foreach(after, key, v) {
		json_int_t d = json_integer_value(v) - json_integer_value(json_object_get(before, key));

		json_object_set_new(delta, key, json_integer(d));
		json_object_set_new(per_s, key, json_real((double)d / dt));
		if (d != 0 && n < sizeof(keys) / sizeof(keys[0]))
			keys[n++] = key;
	}
	if (as_json) {
		json_object_set_new(out, "interval_s", json_real(dt));
		json_object_set(out, "delta", delta);
		json_object_set(out, "per_s", per_s);
		if ((text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(12)))) {
			printf("%s\n", text);
			free(text);
		}
	} else {
		qsort(keys, n, sizeof(keys[0]), key_cmp);
		printf("over %.3f s:%s\n", dt, n ? "" : " nothing changed");
		for (size_t i = 0; i < n; i++)
			printf("  %-28s %14lld %16.1f/s\n", keys[i],
			       (long long)json_integer_value(json_object_get(delta, keys[i])),
			       json_real_value(json_object_get(per_s, keys[i])));
	}
	fflush(stdout);
	json_decref(out);
	json_decref(delta);
	json_decref(per_s);
}

/* `count` intervals of `interval` seconds (0: until interrupted), each against the last reading.
 * 0; 3 when the first reading fails; 1 when the server stops answering later. */
static int run_rates(int fd, char *reply, double interval, long count, bool as_json)
{
	json_t *root0, *root1, *c0 = ctl_counters(fd, reply, &root0), *c1;
	double t0 = now_s(), t1;

	for (long i = 0; c0 && (count == 0 || i < count); i++) {
		double wait = t0 + interval - now_s();
		struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};

		if (wait > 0)
			nanosleep(&ts, NULL);
		c1 = ctl_counters(fd, reply, &root1);
		t1 = now_s();
		if (!c1) { /* the server stopped (counters only grow while it runs) */
			json_decref(root1);
			fprintf(stderr, "dds-ctl: rates: the server stopped answering after %ld "
				"interval(s)\n", i);
			json_decref(root0);
			return 1;
		}
		print_rates(c0, c1, t1 - t0, as_json);
		json_decref(root0);
		root0 = root1;
		c0 = c1;
		t0 = t1;
	}
	if (!c0)
		fprintf(stderr, "dds-ctl: rates: no counters from the server\n");
	json_decref(root0);
	return c0 ? 0 : 3;
}

/* rates' flags after the command word; -1 (usage) on anything else. */
static int rates_args(int argc, char **argv, int i, double *interval, long *count, bool *as_json)
{
	for (; i < argc; i++) {
		char *end = NULL;

		if (!strcmp(argv[i], "--json")) {
			*as_json = true;
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			*interval = strtod(argv[++i], &end);
			if (*end || !(*interval >= 0.01 && *interval <= 3600))
				return fprintf(stderr, "dds-ctl: rates: --interval: '%s' is not a number "
					       "of seconds in [0.01, 3600]\n", argv[i]), -1;
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			*count = strtol(argv[++i], &end, 10);
			if (*end || *count < 0)
				return fprintf(stderr, "dds-ctl: rates: --count: '%s' is not a count "
					       "(0: until interrupted)\n", argv[i]), -1;
		} else {
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *prefix = "dds", *sock = NULL;
	char path[512], cmd[512], *reply;
	bool latency = false, lat_json = false, lat_reset = false, rates = false, rates_json = false;
	const char *lat_model = NULL;
	double interval = 1.0;
	long count = 1;
	int o, fd, rc;

	while ((o = getopt(argc, argv, "+p:s:h")) != -1) {
		switch (o) {
		case 'p': prefix = optarg; break;
		case 's': sock = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "latency")) {
		latency = true;
		for (int i = optind + 1; i < argc; i++) {
			if (!strcmp(argv[i], "--json"))
				lat_json = true;
			else if (!strcmp(argv[i], "--reset"))
				lat_reset = true;
			else if (!strcmp(argv[i], "--model") && i + 1 < argc && argv[i + 1][0])
				lat_model = argv[++i];
			else {
				usage(stderr);
				return 2;
			}
		}
		snprintf(cmd, sizeof(cmd), "/dds/latency%s%s%s", lat_reset ? "_reset" : "",
			 lat_model ? "," : "", lat_model ? lat_model : "");
	} else if (optind < argc && !strcmp(argv[optind], "rates")) {
		rates = true;
		if (rates_args(argc, argv, optind + 1, &interval, &count, &rates_json)) {
			usage(stderr);
			return 2;
		}
	} else if (argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	if (latency)
		;
	else if (optind == argc)
		snprintf(cmd, sizeof(cmd), "/dds/counters");
	else
		snprintf(cmd, sizeof(cmd), "%s%s%s%s", argv[optind][0] == '/' ? "" : "/dds/",
			 argv[optind], optind + 1 < argc ? "," : "",
			 optind + 1 < argc ? argv[optind + 1] : "");
	if (!sock) {
		socket_path(path, sizeof(path), prefix);
		sock = path;
	}
	fd = ctl_connect(sock);
	if (fd < 0)
		return 1;
	reply = malloc(CTL_REPLY_MAX);
	rc = reply ? ctl_recv(fd, reply) : -1; /* the server's greeting */
	if (rc == 0 && rates) {
		rc = run_rates(fd, reply, interval, count, rates_json);
		free(reply);
		close(fd);
		return rc;
	}
	if (rc == 0 && ctl_cmd(fd, cmd, reply) < 0)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "dds-ctl: %s\n", reply ? "the telemetry socket closed without a reply"
						       : "out of memory");
	if (rc == 0 && !latency)
		printf("%s\n", reply);
	if (rc == 0 && strlen(reply) >= 6 && !strcmp(reply + strlen(reply) - 6, ":null}")) {
		fprintf(stderr, "dds-ctl: %s: unknown command, or the server is not ready\n", cmd);
		rc = 3;
	} else if (rc == 0 && latency) {
		rc = print_latency(reply, lat_json);
	}
	free(reply);
	close(fd);
	return rc < 0 ? 1 : rc;
}
