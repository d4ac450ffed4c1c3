/* dds-ctl: asks a running dds-server for its state through DPDK's telemetry socket and prints the JSON reply. */
#include <errno.h>
#include <getopt.h>
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
		"  COMMAND   counters (default), state, proto, models, queue N, or any telemetry\n"
		"            command starting with '/' (\"/\" lists them all)\n"
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

int main(int argc, char **argv)
{
	const char *prefix = "dds", *sock = NULL;
	char path[512], cmd[512], *reply;
	int o, fd, rc;

	while ((o = getopt(argc, argv, "+p:s:h")) != -1) {
		switch (o) {
		case 'p': prefix = optarg; break;
		case 's': sock = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	if (optind == argc)
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
	if (rc == 0)
		printf("%s\n", reply);
	if (rc == 0 && strlen(reply) >= 6 && !strcmp(reply + strlen(reply) - 6, ":null}")) {
		fprintf(stderr, "dds-ctl: %s: unknown command, or the server is not ready\n", cmd);
		rc = 3;
	}
	free(reply);
	close(fd);
	return rc < 0 ? 1 : rc;
}
