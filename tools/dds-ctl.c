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
#include <unistd.h>

#define CTL_REPLY_MAX (64 * 1024)

static void usage(FILE *to)
{
	fprintf(to,
		"usage: dds-ctl [-p PREFIX | -s SOCKET] [COMMAND [PARAMS]]\n"
		"       dds-ctl [-p PREFIX | -s SOCKET] latency [--json] [--reset]\n"
		"  COMMAND   counters (default), state, proto, models, pricing, sched, queue N, or any\n"
		"            telemetry command starting with '/' (\"/\" lists them all)\n"
		"  latency   server-side latency per stage since the last reset, as a table in\n"
		"            microseconds (--json: as JSON; --reset: print, then start afresh)\n"
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

/* One exchange: the server's greeting, then our command and its reply. */
static int ctl_ask(int fd, const char *cmd, char *reply)
{
	ssize_t n = recv(fd, reply, CTL_REPLY_MAX - 1, 0);

	if (n <= 0 || send(fd, cmd, strlen(cmd), 0) < 0 ||
	    (n = recv(fd, reply, CTL_REPLY_MAX - 1, 0)) <= 0) {
		fprintf(stderr, "dds-ctl: the telemetry socket closed: %s\n",
			n < 0 ? strerror(errno) : "no reply");
		return -1;
	}
	reply[n] = '\0';
	return 0;
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

	dict = json_is_object(root) ? json_object_iter_value(json_object_iter(root)) : NULL;
	if (!json_is_object(dict)) {
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

int main(int argc, char **argv)
{
	const char *prefix = "dds", *sock = NULL;
	char path[512], cmd[512], *reply;
	bool latency = false, lat_json = false, lat_reset = false;
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
			else {
				usage(stderr);
				return 2;
			}
		}
		snprintf(cmd, sizeof(cmd), "/dds/latency%s", lat_reset ? "_reset" : "");
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
	rc = reply ? ctl_ask(fd, cmd, reply) : -1;
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
