/* link.c: dds-agent's UDP link to the node over a kernel socket: REGISTER, REQUEST fragments, and the answers through the protocol receiver. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"

#define DGRAM_MAX 65536

volatile sig_atomic_t dds_agent_stop;

uint64_t dds_agent_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The first request id: the wall clock in nanoseconds, so that a restarted agent's ids are above
 * those the node's replay window saw from its previous run. */
static uint64_t first_id(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The route's MTU towards the connected peer (IP_MTU), or `fallback` if the kernel has none. */
static size_t path_mtu(int fd, size_t fallback)
{
	int mtu = 0;
	socklen_t len = sizeof(mtu);

	if (getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) || mtu < 576)
		return fallback;
	return (size_t)mtu;
}

int dds_agent_link_open(struct dds_agent_link *l, const char *ip, int port, uint32_t device_id,
			const uint8_t key[DDS_PROTO_KEY_LEN], size_t mtu_max, uint64_t timeout_ns,
			char *err, size_t err_len)
{
	struct dds_proto_rx_config rc = {.role = DDS_ROLE_DEVICE, .max_slots = 64,
					 .max_slots_per_device = 64, .max_bytes = 256u << 20,
					 .max_bytes_per_device = 256u << 20,
					 .max_payload = 256u << 20, .timeout_ns = timeout_ns};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {0, 20000}; /* recv wakes up 50 times a second to see signals */

	*l = (struct dds_agent_link){.fd = -1, .device_id = device_id, .next_id = first_id()};
	memcpy(l->key, key, DDS_PROTO_KEY_LEN);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return dds_fail(err, err_len, "--server: '%s' is not an IPv4 address", ip);
	l->dgram = malloc(DGRAM_MAX);
	l->devs = dds_proto_devtab_new(1);
	if (!l->dgram || !l->devs || dds_proto_devtab_add(l->devs, device_id, key) ||
	    !(l->rx = dds_proto_rx_new(&rc, l->devs, NULL))) {
		dds_agent_link_close(l);
		return dds_fail(err, err_len, "out of memory for the protocol receiver");
	}
	l->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(l->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		dds_fail(err, err_len, "socket to %s:%d: %s", ip, port, strerror(errno));
		dds_agent_link_close(l);
		return -1;
	}
	l->mtu = path_mtu(l->fd, mtu_max);
	if (l->mtu > mtu_max)
		l->mtu = mtu_max;
	return 0;
}

void dds_agent_link_close(struct dds_agent_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	dds_proto_rx_free(l->rx);
	dds_proto_devtab_free(l->devs);
	free(l->dgram);
	l->fd = -1;
	l->rx = NULL;
	l->devs = NULL;
	l->dgram = NULL;
}

static int send_dgram(struct dds_agent_link *l, size_t n, char *err, size_t err_len)
{
	if (n == 0)
		return dds_fail(err, err_len, "a datagram could not be encoded at MTU %zu", l->mtu);
	if (send(l->fd, l->dgram, n, 0) != (ssize_t)n)
		return dds_fail(err, err_len, "send: %s", strerror(errno));
	l->tx_bytes += n;
	return 0;
}

int dds_agent_send_register(struct dds_agent_link *l, uint64_t model_hash, uint64_t *id,
			    char *err, size_t err_len)
{
	struct dds_proto_hdr h = {.type = DDS_MSG_REGISTER, .device_id = l->device_id,
				  .request_id = ++l->next_id, .model_hash = model_hash};

	*id = h.request_id;
	return send_dgram(l, dds_proto_encode_register(&h, (uint32_t)l->mtu, l->key, l->dgram,
						       DGRAM_MAX), err, err_len);
}

int dds_agent_send_request(struct dds_agent_link *l, uint64_t model_hash,
			   const struct dds_proto_tmsg *tm, const void *payload, uint64_t *id,
			   unsigned *frags, char *err, size_t err_len)
{
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = l->device_id,
				  .request_id = ++l->next_id, .model_hash = model_hash};
	unsigned count = dds_proto_frag_count(tm, l->mtu);

	*id = h.request_id;
	*frags = count;
	if (count == 0)
		return dds_fail(err, err_len, "the request cannot be sent at MTU %zu", l->mtu);
	for (unsigned i = 0; i < count; i++)
		if (send_dgram(l, dds_proto_encode_frag(&h, tm, payload, i, l->mtu, l->key,
							l->dgram, DGRAM_MAX), err, err_len))
			return -1;
	return 0;
}

/* The price an answer carries, or -1 if its type carries none. */
static double price_of(const struct dds_proto_event *ev)
{
	switch (ev->msg.h.type) {
	case DDS_MSG_RESULT: return ev->msg.u.frag.tm.value;
	case DDS_MSG_REGISTER_REPLY: return ev->msg.u.reply.price;
	case DDS_MSG_ERROR: return ev->msg.u.err.price;
	case DDS_MSG_BUSY: return ev->msg.u.busy.price;
	default: return -1;
	}
}

/* One authenticated message or completed result: is it the answer to `id`? */
static bool is_answer(struct dds_agent_link *l, uint64_t id, const struct dds_proto_event *ev,
		      dds_agent_price_fn on_price, void *ctx)
{
	double p;

	if (ev->msg.h.type == DDS_MSG_PRICE) {
		l->price = ev->msg.u.price.price;
		l->price_round = ev->msg.h.request_id;
		if (on_price)
			on_price(ctx, l->price);
		return false;
	}
	p = price_of(ev);
	if (p > 0)
		l->price = p;
	if (ev->msg.h.request_id == id)
		return true;
	if (ev->kind == DDS_EV_COMPLETE)
		free(ev->buf); /* a late answer to an attempt given up on */
	return false;
}

enum dds_agent_wait dds_agent_wait(struct dds_agent_link *l, uint64_t id, uint64_t deadline_ns,
				   dds_agent_price_fn on_price, void *ctx,
				   struct dds_proto_event *ev)
{
	while (!dds_agent_stop) {
		uint64_t now = dds_agent_now_ns();
		ssize_t n;

		dds_proto_rx_expire(l->rx, now);
		if (now >= deadline_ns)
			return DDS_AGENT_TIMEOUT;
		n = recv(l->fd, l->dgram, DGRAM_MAX, 0);
		if (n <= 0)
			continue; /* timeout tick, EINTR, or an ICMP error: look at the clock again */
		l->rx_bytes += (uint64_t)n;
		dds_proto_rx_input(l->rx, l->dgram, (size_t)n, dds_agent_now_ns(), ev);
		if (ev->kind == DDS_EV_NONE || !is_answer(l, id, ev, on_price, ctx))
			continue;
		switch (ev->msg.h.type) {
		case DDS_MSG_RESULT: return DDS_AGENT_RESULT;
		case DDS_MSG_ERROR: return DDS_AGENT_ERROR;
		case DDS_MSG_BUSY: return DDS_AGENT_BUSY;
		case DDS_MSG_REGISTER_REPLY: return DDS_AGENT_REPLY;
		default: continue;
		}
	}
	return DDS_AGENT_STOPPED;
}
