/* io_sock.c: the live run's kernel I/O: one connected UDP socket per simulated device, sendmmsg bursts, epoll. */
#define _GNU_SOURCE
#include "lg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_BUF (4 << 20)

struct lg_io {
	struct lg_fleet *f;
	struct lg_stats *s;
	struct lg_io_sink sink;
	int ep;
	int *fd;               /* device i's socket, -1 until open */
	uint8_t dgram[65536];  /* a received datagram */
};

static int open_socket(struct lg_io *io, int i, char *err, size_t err_len)
{
	const struct lg_opts *o = io->f->o;
	struct lg_dev *d = &io->f->dev[i];
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = o->bind_ip};
	struct sockaddr_in srv = {.sin_family = AF_INET, .sin_addr.s_addr = o->server_ip,
				  .sin_port = htons(o->server_port)};
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
	socklen_t sl = sizeof(me);
	int sz = SOCK_BUF, fd;

	fd = io->fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return dds_fail(err, err_len, "socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)))
		return dds_fail(err, err_len, "--bind: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&srv, sizeof(srv)))
		return dds_fail(err, err_len, "--server: connect: %s", strerror(errno));
	getsockname(fd, (struct sockaddr *)&me, &sl);
	memcpy(d->addr.src_mac, o->src_mac, 6);
	memcpy(d->addr.dst_mac, o->dst_mac, 6);
	d->addr.src_ip = me.sin_addr.s_addr;
	d->addr.dst_ip = o->server_ip;
	d->addr.src_port = ntohs(me.sin_port);
	d->addr.dst_port = o->server_port;
	if (epoll_ctl(io->ep, EPOLL_CTL_ADD, fd, &ev))
		return dds_fail(err, err_len, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static int sock_open(struct lg_fleet *f, struct lg_stats *s, const struct lg_io_sink *sink,
		     struct lg_io **out, char *err, size_t err_len)
{
	struct lg_io *io = *out = calloc(1, sizeof(*io));

	if (!io)
		return dds_fail(err, err_len, "out of memory");
	*io = (struct lg_io){.f = f, .s = s, .sink = *sink, .ep = -1};
	io->fd = malloc((size_t)f->n * sizeof(*io->fd));
	io->ep = epoll_create1(EPOLL_CLOEXEC);
	if (io->ep < 0 || !io->fd)
		return dds_fail(err, err_len, "epoll or sockets: out of resources");
	for (int i = 0; i < f->n; i++)
		io->fd[i] = -1;
	for (int i = 0; i < f->n; i++)
		if (open_socket(io, i, err, err_len))
			return -1;
	return 0;
}

/* As few sendmmsg calls as the socket takes (a request's fragments leave back to back, as from
 * a device's NIC); waits for socket space when the buffer is full. A datagram the kernel
 * refuses (e.g. ECONNREFUSED from an ICMP error) is lost and counted; the rest still go. */
static void sock_flush(struct lg_io *io, struct lg_dev *d, const struct iovec *dgram, unsigned n,
		       uint64_t now)
{
	int fd = io->fd[d - io->f->dev];
	struct mmsghdr mh[LG_BURST];
	unsigned done = 0;
	int tries = 0;

	for (unsigned j = 0; j < n; j++)
		mh[j] = (struct mmsghdr){.msg_hdr = {.msg_iov = (struct iovec *)&dgram[j],
						     .msg_iovlen = 1}};
	while (done < n) {
		int k = sendmmsg(fd, mh + done, n - done, 0);

		if (k > 0) {
			for (int j = 0; j < k; j++)
				io->sink.sent(io->sink.arg, d, &dgram[done + (unsigned)j], now);
			done += (unsigned)k;
		} else if (k < 0 && (errno == EAGAIN || errno == ENOBUFS) && tries++ < 1000) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};

			io->s->send_stalls++;
			poll(&pf, 1, 10);
		} else {
			io->s->send_errors++;
			done++;
		}
	}
}

static void drain_socket(struct lg_io *io, int fd)
{
	for (int n = 0; n < 256; n++) {
		ssize_t len = recv(fd, io->dgram, sizeof(io->dgram), 0);

		if (len < 0)
			return; /* EAGAIN, or an ICMP error reported on the socket */
		io->sink.recv(io->sink.arg, io->dgram, (size_t)len, lg_clock_ns(CLOCK_MONOTONIC));
	}
}

/* Wait for the sockets until the deadline, then read what came. */
static void sock_poll(struct lg_io *io, uint64_t now, uint64_t deadline)
{
	struct epoll_event evs[64];
	uint64_t wait = deadline > now ? deadline - now : 0;
	struct timespec ts = {.tv_sec = (time_t)(wait / LG_NS), .tv_nsec = (long)(wait % LG_NS)};
	int n = epoll_pwait2(io->ep, evs, 64, &ts, NULL);

	for (int j = 0; j < n; j++)
		drain_socket(io, io->fd[evs[j].data.u32]);
}

static void sock_close(struct lg_io *io, struct lg_stats *s)
{
	(void)s;
	if (!io)
		return;
	for (int i = 0; io->fd && i < io->f->n; i++)
		if (io->fd[i] >= 0)
			close(io->fd[i]);
	if (io->ep >= 0)
		close(io->ep);
	free(io->fd);
	free(io);
}

const struct lg_io_ops lg_io_kernel = {
	.name = "kernel", .open = sock_open, .flush = sock_flush, .poll = sock_poll,
	.close = sock_close,
};
