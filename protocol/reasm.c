/* reasm.c: the receiver: checks, authentication, replay and reassembly into the final buffer. */
#include <stdlib.h>

#include "proto_int.h"

/* A partial REQUEST/RESULT. Its descriptor (type, model, fragment count, tensors) comes from
 * its first fragment; every later fragment must repeat it. */
struct slot {
	bool used;
	uint8_t type;
	uint16_t frag_count;
	uint32_t device_id;
	uint64_t request_id, model_hash;
	uint64_t deadline;
	uint64_t first_ns; /* when the first fragment came */
	struct dds_proto_tmsg tm;
	struct dds_proto_dev *dev;
	uint8_t *buf;    /* payload_len bytes from the allocator */
	uint64_t *bits;  /* one bit per 8-byte unit received */
	uint32_t units, units_have;
	int32_t next;    /* hash chain, or the free list */
};

struct dds_proto_rx {
	struct dds_proto_rx_config cfg;
	struct dds_proto_devtab *devs;
	struct dds_proto_alloc alloc;
	struct slot *slots;
	int32_t *bucket;
	uint32_t bucket_mask;
	int32_t free_head;
	uint32_t slots_used;
	uint64_t bytes_used;
	uint64_t count[DDS_PROTO_REASON__COUNT];
};

static void *default_alloc(void *ctx, const struct dds_proto_msg *m, size_t len)
{
	(void)ctx;
	(void)m;
	return malloc(len);
}

static void default_release(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)len;
	free(buf);
}

static bool config_ok(const struct dds_proto_rx_config *c)
{
	return (c->role == DDS_ROLE_NODE || c->role == DDS_ROLE_DEVICE) && c->max_slots > 0 &&
	       c->max_slots <= (1u << 24) && c->max_slots_per_device > 0 && c->max_bytes > 0 &&
	       c->max_bytes_per_device > 0 && c->max_payload > 0 && c->timeout_ns > 0;
}

struct dds_proto_rx *dds_proto_rx_new(const struct dds_proto_rx_config *cfg,
				      struct dds_proto_devtab *devs,
				      const struct dds_proto_alloc *alloc)
{
	if (!cfg || !devs || !config_ok(cfg) || (alloc && (!alloc->alloc || !alloc->release)))
		return NULL;
	struct dds_proto_rx *rx = calloc(1, sizeof *rx);
	if (!rx)
		return NULL;
	rx->cfg = *cfg;
	rx->devs = devs;
	rx->alloc = alloc ? *alloc
			  : (struct dds_proto_alloc){ .alloc = default_alloc,
						      .release = default_release };
	uint32_t nb = 2;
	while (nb < 2 * cfg->max_slots)
		nb *= 2;
	rx->bucket_mask = nb - 1;
	rx->slots = calloc(cfg->max_slots, sizeof *rx->slots);
	rx->bucket = malloc(nb * sizeof *rx->bucket);
	if (!rx->slots || !rx->bucket) {
		dds_proto_rx_free(rx);
		return NULL;
	}
	for (uint32_t i = 0; i < nb; i++)
		rx->bucket[i] = -1;
	for (uint32_t i = 0; i < cfg->max_slots; i++)
		rx->slots[i].next = i + 1 < cfg->max_slots ? (int32_t)(i + 1) : -1;
	rx->free_head = 0;
	return rx;
}

static uint32_t bucket_of(const struct dds_proto_rx *rx, uint32_t dev, uint64_t req)
{
	uint64_t h = (req ^ ((uint64_t)dev << 32 | dev)) * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(h >> 32) & rx->bucket_mask;
}

static struct slot *slot_find(struct dds_proto_rx *rx, uint32_t dev, uint64_t req)
{
	for (int32_t i = rx->bucket[bucket_of(rx, dev, req)]; i >= 0; i = rx->slots[i].next)
		if (rx->slots[i].device_id == dev && rx->slots[i].request_id == req)
			return &rx->slots[i];
	return NULL;
}

/* Unlink a slot, return its memory to the budgets and it to the free list. The buffer is
 * released unless `keep_buf` (a completed message, now the caller's). */
static void slot_free(struct dds_proto_rx *rx, struct slot *s, bool keep_buf)
{
	int32_t idx = (int32_t)(s - rx->slots);
	int32_t *p = &rx->bucket[bucket_of(rx, s->device_id, s->request_id)];
	while (*p != idx)
		p = &rx->slots[*p].next;
	*p = s->next;
	if (!keep_buf)
		rx->alloc.release(rx->alloc.ctx, s->buf, s->tm.payload_len);
	free(s->bits);
	s->dev->slots--;
	s->dev->bytes -= s->tm.payload_len;
	rx->slots_used--;
	rx->bytes_used -= s->tm.payload_len;
	s->used = false;
	s->next = rx->free_head;
	rx->free_head = idx;
}

void dds_proto_rx_free(struct dds_proto_rx *rx)
{
	if (!rx)
		return;
	for (uint32_t i = 0; rx->slots && i < rx->cfg.max_slots; i++)
		if (rx->slots[i].used)
			slot_free(rx, &rx->slots[i], false);
	free(rx->slots);
	free(rx->bucket);
	free(rx);
}

unsigned dds_proto_rx_expire(struct dds_proto_rx *rx, uint64_t now_ns)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < rx->cfg.max_slots; i++) {
		if (rx->slots[i].used && rx->slots[i].deadline <= now_ns) {
			slot_free(rx, &rx->slots[i], false);
			rx->count[DDS_DROP_TIMEOUT]++;
			n++;
		}
	}
	return n;
}

unsigned dds_proto_rx_drain(struct dds_proto_rx *rx, dds_proto_drain_fn fn, void *arg)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < rx->cfg.max_slots; i++) {
		struct slot *s = &rx->slots[i];
		if (!s->used)
			continue;
		struct dds_proto_hdr h = {.type = s->type, .device_id = s->device_id,
					  .frag_count = s->frag_count, .request_id = s->request_id,
					  .model_hash = s->model_hash};
		if (fn)
			fn(arg, &h, s->first_ns);
		slot_free(rx, s, false);
		n++;
	}
	return n;
}

static bool tensor_equal(const struct dds_proto_tensor *a, const struct dds_proto_tensor *b)
{
	return a->value_id == b->value_id && a->dtype == b->dtype && a->ndim == b->ndim &&
	       memcmp(a->dim, b->dim, sizeof a->dim) == 0;
}

/* Does a fragment repeat its message's descriptor? */
static bool same_message(const struct slot *s, const struct dds_proto_msg *m)
{
	const struct dds_proto_tmsg *a = &s->tm, *b = &m->u.frag.tm;
	if (s->type != m->h.type || s->model_hash != m->h.model_hash ||
	    s->frag_count != m->h.frag_count || memcmp(&a->value, &b->value, sizeof a->value) ||
	    a->payload_len != b->payload_len || a->n_tensors != b->n_tensors)
		return false;
	for (unsigned i = 0; i < a->n_tensors; i++)
		if (!tensor_equal(&a->t[i], &b->t[i]))
			return false;
	return true;
}

static bool bit_get(const uint64_t *bits, uint32_t u)
{
	return bits[u / 64] >> (u % 64) & 1;
}

/* How many of bits [u0, u1) are set; sets them all too when `set`. A word at a time: a
 * 1,400-byte fragment spans 175 units, and a bit at a time was a fifth of the receive path. */
static uint32_t bits_range(uint64_t *bits, uint32_t u0, uint32_t u1, bool set)
{
	uint32_t held = 0;
	for (uint32_t u = u0; u < u1;) {
		uint32_t lo = u % 64, n = u1 - u < 64 - lo ? u1 - u : 64 - lo;
		uint64_t mask = (n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1) << lo;
		held += (uint32_t)__builtin_popcountll(bits[u / 64] & mask);
		if (set)
			bits[u / 64] |= mask;
		u += n;
	}
	return held;
}

/* Copy a fragment into its slot. Bytes already held must be equal (else OVERLAP_CONFLICT);
 * a fragment that brings no new unit is a DUPLICATE. */
static int slot_place(struct slot *s, const struct dds_proto_msg *m)
{
	uint32_t off = m->u.frag.frag_offset, end = off + m->u.frag.frag_len;
	uint32_t u0 = off / DDS_PROTO_FRAG_ALIGN;
	uint32_t u1 = (uint32_t)(((uint64_t)end + DDS_PROTO_FRAG_ALIGN - 1) / DDS_PROTO_FRAG_ALIGN);
	uint32_t held = bits_range(s->bits, u0, u1, false);
	for (uint32_t u = u0; held && u < u1; u++) { /* compare the units already held */
		uint32_t a = u * DDS_PROTO_FRAG_ALIGN;
		uint32_t n = end - a < DDS_PROTO_FRAG_ALIGN ? end - a : DDS_PROTO_FRAG_ALIGN;
		if (bit_get(s->bits, u) && memcmp(s->buf + a, m->u.frag.data + (a - off), n))
			return DDS_DROP_OVERLAP_CONFLICT;
	}
	if (held == u1 - u0)
		return DDS_DROP_DUPLICATE;
	memcpy(s->buf + off, m->u.frag.data, m->u.frag.frag_len);
	bits_range(s->bits, u0, u1, true);
	s->units_have += u1 - u0 - held;
	return DDS_PROTO_OK;
}

/* The first limit a new message of `len` bytes from `dev` would break, or OK. */
static int limits(const struct dds_proto_rx *rx, const struct dds_proto_dev *dev, uint64_t len)
{
	const struct dds_proto_rx_config *c = &rx->cfg;
	if (dev->slots >= c->max_slots_per_device)
		return DDS_DROP_DEVICE_SLOTS;
	if (dev->bytes + len > c->max_bytes_per_device)
		return DDS_DROP_DEVICE_MEMORY;
	if (rx->slots_used >= c->max_slots)
		return DDS_DROP_TABLE_FULL;
	if (rx->bytes_used + len > c->max_bytes)
		return DDS_DROP_MEMORY;
	return DDS_PROTO_OK;
}

/* A slot for the first fragment of a message (nothing changed on failure). */
static int slot_new(struct dds_proto_rx *rx, struct dds_proto_dev *dev,
		    const struct dds_proto_msg *m, uint64_t now, struct slot **out)
{
	uint32_t len = m->u.frag.tm.payload_len;
	if (!rx->cfg.accept_replays && !dds_replay_check(&dev->window, m->h.request_id))
		return DDS_DROP_REPLAY;
	if (len > rx->cfg.max_payload)
		return DDS_DROP_TOO_LARGE;
	if (limits(rx, dev, len) != DDS_PROTO_OK)
		dds_proto_rx_expire(rx, now);
	int rc = limits(rx, dev, len);
	if (rc != DDS_PROTO_OK)
		return rc;
	struct slot *s = &rx->slots[rx->free_head];
	s->units = (uint32_t)(((uint64_t)len + DDS_PROTO_FRAG_ALIGN - 1) / DDS_PROTO_FRAG_ALIGN);
	s->bits = calloc(((size_t)s->units + 63) / 64, sizeof *s->bits);
	s->buf = s->bits ? rx->alloc.alloc(rx->alloc.ctx, m, len) : NULL;
	if (!s->buf) {
		free(s->bits);
		return DDS_DROP_ALLOC_FAILED;
	}
	dds_replay_commit(&dev->window, m->h.request_id);
	rx->free_head = s->next;
	uint32_t b = bucket_of(rx, m->h.device_id, m->h.request_id);
	s->next = rx->bucket[b];
	rx->bucket[b] = (int32_t)(s - rx->slots);
	s->used = true;
	s->type = m->h.type;
	s->frag_count = m->h.frag_count;
	s->device_id = m->h.device_id;
	s->request_id = m->h.request_id;
	s->model_hash = m->h.model_hash;
	s->deadline = now + rx->cfg.timeout_ns;
	s->first_ns = now;
	s->tm = m->u.frag.tm;
	s->dev = dev;
	s->units_have = 0;
	dev->slots++;
	dev->bytes += len;
	rx->slots_used++;
	rx->bytes_used += len;
	*out = s;
	return DDS_PROTO_OK;
}

/* An authenticated fragment: find or make its slot, place it, hand over a complete message. */
static int rx_fragment(struct dds_proto_rx *rx, struct dds_proto_dev *dev, uint64_t now,
		       struct dds_proto_event *ev)
{
	const struct dds_proto_msg *m = &ev->msg;
	struct slot *s = slot_find(rx, m->h.device_id, m->h.request_id);
	int rc;
	if (s && s->deadline <= now) {
		slot_free(rx, s, false);
		return DDS_DROP_TIMEOUT;
	}
	if (s && !same_message(s, m)) {
		slot_free(rx, s, false);
		return DDS_DROP_INCONSISTENT;
	}
	if (!s && (rc = slot_new(rx, dev, m, now, &s)) != DDS_PROTO_OK)
		return rc;
	rc = slot_place(s, m);
	if (rc == DDS_DROP_OVERLAP_CONFLICT)
		slot_free(rx, s, false);
	if (rc != DDS_PROTO_OK || s->units_have < s->units)
		return rc;
	ev->kind = DDS_EV_COMPLETE;
	ev->buf = s->buf;
	ev->len = s->tm.payload_len;
	ev->first_ns = s->first_ns;
	slot_free(rx, s, true);
	return DDS_PROTO_OK;
}

/* An authenticated single-datagram message: replay check on its id (rounds for PRICE), unless
 * the receiver accepts replays. */
static int rx_single(const struct dds_proto_rx *rx, struct dds_proto_dev *dev,
		     struct dds_proto_event *ev)
{
	uint64_t id = ev->msg.h.request_id;
	if (ev->msg.h.type == DDS_MSG_PRICE) {
		if (dev->have_round && id <= dev->last_round)
			return DDS_DROP_REPLAY;
		dev->have_round = true;
		dev->last_round = id;
	} else {
		if (!rx->cfg.accept_replays && !dds_replay_check(&dev->window, id))
			return DDS_DROP_REPLAY;
		dds_replay_commit(&dev->window, id);
	}
	ev->kind = DDS_EV_MESSAGE;
	return DDS_PROTO_OK;
}

static bool role_accepts(enum dds_proto_role role, uint8_t type)
{
	bool to_node = type == DDS_MSG_REGISTER || type == DDS_MSG_REQUEST;
	return (role == DDS_ROLE_NODE) == to_node;
}

static int rx_datagram(struct dds_proto_rx *rx, const uint8_t *dgram, size_t len, uint64_t now,
		       struct dds_proto_event *ev)
{
	int rc = dds_proto_parse(dgram, len, &ev->msg);
	if (rc != DDS_PROTO_OK)
		return rc;
	if (!role_accepts(rx->cfg.role, ev->msg.h.type))
		return DDS_DROP_UNEXPECTED_TYPE;
	struct dds_proto_dev *dev = dds_proto_devtab_find(rx->devs, ev->msg.h.device_id);
	if (!dev)
		return DDS_DROP_UNKNOWN_DEVICE;
	if (!dds_proto_mac_verify(dgram, len, dev->key))
		return DDS_DROP_BAD_MAC;
	if (ev->msg.h.type == DDS_MSG_REQUEST || ev->msg.h.type == DDS_MSG_RESULT)
		return rx_fragment(rx, dev, now, ev);
	return rx_single(rx, dev, ev);
}

void dds_proto_rx_input(struct dds_proto_rx *rx, const uint8_t *dgram, size_t len,
			uint64_t now_ns, struct dds_proto_event *ev)
{
	ev->kind = DDS_EV_NONE;
	ev->buf = NULL;
	ev->len = 0;
	ev->first_ns = 0;
	ev->reason = rx_datagram(rx, dgram, len, now_ns, ev);
	rx->count[ev->reason]++;
}

uint64_t dds_proto_rx_count(const struct dds_proto_rx *rx, int reason)
{
	return reason >= 0 && reason < DDS_PROTO_REASON__COUNT ? rx->count[reason] : 0;
}

uint32_t dds_proto_rx_slots_used(const struct dds_proto_rx *rx)
{
	return rx->slots_used;
}

uint64_t dds_proto_rx_bytes_used(const struct dds_proto_rx *rx)
{
	return rx->bytes_used;
}
