/* wire.c: parsing and validation of datagrams (syntax only; MACs are in auth.c), reason names. */
#include <math.h>

#include "proto_int.h"

static const char *const reason_names[DDS_PROTO_REASON__COUNT] = {
	[DDS_PROTO_OK] = "ok",
	[DDS_DROP_TRUNCATED] = "truncated",
	[DDS_DROP_BAD_MAGIC] = "bad_magic",
	[DDS_DROP_BAD_VERSION] = "bad_version",
	[DDS_DROP_BAD_TYPE] = "bad_type",
	[DDS_DROP_BAD_FLAGS] = "bad_flags",
	[DDS_DROP_BAD_LENGTH] = "bad_length",
	[DDS_DROP_BAD_FRAGMENT] = "bad_fragment",
	[DDS_DROP_BAD_TENSOR] = "bad_tensor",
	[DDS_DROP_BAD_VALUE] = "bad_value",
	[DDS_DROP_UNEXPECTED_TYPE] = "unexpected_type",
	[DDS_DROP_UNKNOWN_DEVICE] = "unknown_device",
	[DDS_DROP_BAD_MAC] = "bad_mac",
	[DDS_DROP_REPLAY] = "replay",
	[DDS_DROP_TOO_LARGE] = "too_large",
	[DDS_DROP_DEVICE_SLOTS] = "device_slots",
	[DDS_DROP_DEVICE_MEMORY] = "device_memory",
	[DDS_DROP_TABLE_FULL] = "table_full",
	[DDS_DROP_MEMORY] = "memory",
	[DDS_DROP_ALLOC_FAILED] = "alloc_failed",
	[DDS_DROP_DUPLICATE] = "duplicate",
	[DDS_DROP_INCONSISTENT] = "inconsistent",
	[DDS_DROP_OVERLAP_CONFLICT] = "overlap_conflict",
	[DDS_DROP_TIMEOUT] = "timeout",
	[DDS_DROP_UNKNOWN_MODEL] = "unknown_model",
	[DDS_DROP_BAD_SPLIT] = "bad_split",
	[DDS_DROP_EXEC_FAILED] = "exec_failed",
	[DDS_DROP_SHUTTING_DOWN] = "shutting_down",
};

const char *dds_proto_reason_name(int reason)
{
	if (reason < 0 || reason >= DDS_PROTO_REASON__COUNT)
		return "unknown";
	return reason_names[reason];
}

static bool money_ok(double v)
{
	return isfinite(v) && v >= 0.0;
}

uint64_t dds_proto_tensor_bytes(const struct dds_proto_tensor *t)
{
	if (t->dtype != DDS_DTYPE_F32 || t->ndim < 1 || t->ndim > DDS_PROTO_MAX_DIMS)
		return 0;
	uint64_t n = 4;
	for (int i = 0; i < DDS_PROTO_MAX_DIMS; i++) {
		if (i >= t->ndim) {
			if (t->dim[i] != 0)
				return 0;
		} else if (t->dim[i] == 0 || n > UINT32_MAX) {
			return 0;
		} else {
			n *= t->dim[i]; /* n <= 2^32 before, dim < 2^32: no overflow */
		}
	}
	return n;
}

/* The descriptors of a REQUEST/RESULT body: tensor count, dtypes, shapes, their total. */
static int parse_tensors(const uint8_t *b, size_t body_len, struct dds_proto_tmsg *tm)
{
	tm->value = getf64(b);
	tm->payload_len = get32(b + 8);
	tm->n_tensors = get16(b + 18);
	if (tm->n_tensors < 1 || tm->n_tensors > DDS_PROTO_MAX_TENSORS)
		return DDS_DROP_BAD_TENSOR;
	if (body_len < dds_proto_tmsg_hdr_len(tm))
		return DDS_DROP_BAD_LENGTH;
	uint64_t total = 0;
	for (unsigned i = 0; i < tm->n_tensors; i++) {
		const uint8_t *d = b + DDS_PROTO_TMSG_LEN + i * DDS_PROTO_TDESC_LEN;
		struct dds_proto_tensor *t = &tm->t[i];
		t->value_id = get16(d);
		t->dtype = d[2];
		t->ndim = d[3];
		for (int k = 0; k < DDS_PROTO_MAX_DIMS; k++)
			t->dim[k] = get32(d + 4 + 4 * k);
		uint64_t n = dds_proto_tensor_bytes(t);
		if (n == 0)
			return DDS_DROP_BAD_TENSOR;
		total += n;
	}
	if (total != tm->payload_len)
		return DDS_DROP_BAD_TENSOR;
	return money_ok(tm->value) ? DDS_PROTO_OK : DDS_DROP_BAD_VALUE;
}

/* A REQUEST/RESULT body: descriptors, then this fragment's place in the payload. */
static int parse_frag(const uint8_t *b, size_t body_len, struct dds_proto_msg *m)
{
	if (body_len < DDS_PROTO_TMSG_LEN)
		return DDS_DROP_BAD_LENGTH;
	int rc = parse_tensors(b, body_len, &m->u.frag.tm);
	if (rc != DDS_PROTO_OK)
		return rc;
	const struct dds_proto_tmsg *tm = &m->u.frag.tm;
	uint32_t off = get32(b + 12), flen = get16(b + 16);
	size_t dlen = dds_proto_tmsg_hdr_len(tm);
	if (body_len != dlen + flen)
		return DDS_DROP_BAD_LENGTH;
	uint64_t end = (uint64_t)off + flen;
	uint64_t units = ((uint64_t)tm->payload_len + DDS_PROTO_FRAG_ALIGN - 1) / DDS_PROTO_FRAG_ALIGN;
	if (flen == 0 || off % DDS_PROTO_FRAG_ALIGN || end > tm->payload_len ||
	    (end < tm->payload_len && flen % DDS_PROTO_FRAG_ALIGN) || m->h.frag_count > units)
		return DDS_DROP_BAD_FRAGMENT;
	m->u.frag.frag_offset = off;
	m->u.frag.frag_len = (uint16_t)flen;
	m->u.frag.data = b + dlen;
	return DDS_PROTO_OK;
}

static int parse_reg_reply(const uint8_t *b, size_t body_len, struct dds_proto_msg *m)
{
	struct dds_proto_reg_reply *r = &m->u.reply;
	r->price = getf64(b);
	r->p0 = getf64(b + 8);
	r->max_payload = get32(b + 16);
	r->max_inflight = get32(b + 20);
	r->timeout_ms = get32(b + 24);
	r->work_kind = get16(b + 28);
	r->n_work = get16(b + 30);
	r->work = NULL;
	m->work_be = b + BODY_REG_REPLY;
	if (body_len != BODY_REG_REPLY + 8u * r->n_work)
		return DDS_DROP_BAD_LENGTH;
	if (!money_ok(r->price) || !money_ok(r->p0) || r->work_kind > 1 ||
	    r->n_work > DDS_PROTO_MAX_WORK || (r->work_kind == 1 && r->n_work != 2))
		return DDS_DROP_BAD_VALUE;
	for (unsigned i = 0; i < r->n_work; i++)
		if (!isfinite(getf64(m->work_be + 8 * i)))
			return DDS_DROP_BAD_VALUE;
	return DDS_PROTO_OK;
}

static const uint16_t fixed_body[] = {
	[DDS_MSG_REGISTER] = BODY_REGISTER, [DDS_MSG_PRICE] = BODY_PRICE,
	[DDS_MSG_ERROR] = BODY_ERROR, [DDS_MSG_BUSY] = BODY_BUSY,
};

/* The bodies of the single-datagram messages. */
static int parse_single(const uint8_t *b, size_t body_len, struct dds_proto_msg *m)
{
	uint8_t type = m->h.type;
	if (m->h.frag_count != 1)
		return DDS_DROP_BAD_FRAGMENT;
	if (type == DDS_MSG_REGISTER_REPLY)
		return body_len < BODY_REG_REPLY ? DDS_DROP_BAD_LENGTH : parse_reg_reply(b, body_len, m);
	if (body_len != fixed_body[type])
		return DDS_DROP_BAD_LENGTH;
	if (type == DDS_MSG_REGISTER) {
		m->u.reg.rx_mtu = get32(b);
		return m->u.reg.rx_mtu < 576 || m->u.reg.rx_mtu > 65535 ? DDS_DROP_BAD_VALUE
									 : DDS_PROTO_OK;
	}
	double price = getf64(b); /* PRICE, ERROR and BUSY start with p */
	if (type == DDS_MSG_PRICE) {
		m->u.price.price = price;
	} else if (type == DDS_MSG_ERROR) {
		m->u.err.price = price;
		m->u.err.reason = get16(b + 8);
		if (m->u.err.reason == DDS_PROTO_OK || m->u.err.reason >= DDS_PROTO_REASON__COUNT)
			return DDS_DROP_BAD_VALUE;
	} else {
		m->u.busy.price = price;
		m->u.busy.retry_ms = get32(b + 8);
	}
	return money_ok(price) ? DDS_PROTO_OK : DDS_DROP_BAD_VALUE;
}

static int parse_header(const uint8_t *p, size_t len, struct dds_proto_hdr *h)
{
	if (len < DDS_PROTO_HDR_LEN + DDS_PROTO_MAC_LEN)
		return DDS_DROP_TRUNCATED;
	if (get16(p + OFF_MAGIC) != DDS_PROTO_MAGIC)
		return DDS_DROP_BAD_MAGIC;
	if (p[OFF_VERSION] != DDS_PROTO_VERSION)
		return DDS_DROP_BAD_VERSION;
	h->type = p[OFF_TYPE];
	if (h->type < DDS_MSG_REGISTER || h->type > DDS_MSG_BUSY)
		return DDS_DROP_BAD_TYPE;
	h->flags = get16(p + OFF_FLAGS);
	if (h->flags != 0)
		return DDS_DROP_BAD_FLAGS;
	if ((size_t)get16(p + OFF_BODY_LEN) + DDS_PROTO_HDR_LEN + DDS_PROTO_MAC_LEN != len)
		return DDS_DROP_BAD_LENGTH;
	h->device_id = get32(p + OFF_DEVICE);
	h->frag_index = get16(p + OFF_FRAG_INDEX);
	h->frag_count = get16(p + OFF_FRAG_COUNT);
	h->request_id = get64(p + OFF_REQUEST);
	h->model_hash = get64(p + OFF_MODEL);
	if (h->frag_count == 0 || h->frag_index >= h->frag_count)
		return DDS_DROP_BAD_FRAGMENT;
	return DDS_PROTO_OK;
}

int dds_proto_parse(const uint8_t *dgram, size_t len, struct dds_proto_msg *out)
{
	memset(out, 0, sizeof *out);
	int rc = parse_header(dgram, len, &out->h);
	if (rc != DDS_PROTO_OK)
		return rc;
	const uint8_t *body = dgram + DDS_PROTO_HDR_LEN;
	size_t body_len = len - DDS_PROTO_HDR_LEN - DDS_PROTO_MAC_LEN;
	if (out->h.type == DDS_MSG_REQUEST || out->h.type == DDS_MSG_RESULT)
		return parse_frag(body, body_len, out);
	return parse_single(body, body_len, out);
}

double dds_proto_reg_work(const struct dds_proto_msg *m, unsigned i)
{
	return getf64(m->work_be + 8 * i);
}
