/* encode.c: encoders of every message type, and the fragmentation of tensors to an MTU. */
#include <math.h>

#include "proto_int.h"

/* Header of a datagram with a body of body_len bytes; returns the datagram's length or 0. */
static size_t put_header(const struct dds_proto_hdr *h, uint8_t type, size_t body_len,
			 uint16_t index, uint16_t count, uint8_t *out, size_t cap)
{
	size_t len = DDS_PROTO_HDR_LEN + body_len + DDS_PROTO_MAC_LEN;
	if (body_len > UINT16_MAX || len > cap)
		return 0;
	put16(out + OFF_MAGIC, DDS_PROTO_MAGIC);
	out[OFF_VERSION] = DDS_PROTO_VERSION;
	out[OFF_TYPE] = type;
	put16(out + OFF_FLAGS, 0);
	put16(out + OFF_BODY_LEN, (uint16_t)body_len);
	put32(out + OFF_DEVICE, h->device_id);
	put16(out + OFF_FRAG_INDEX, index);
	put16(out + OFF_FRAG_COUNT, count);
	put64(out + OFF_REQUEST, h->request_id);
	put64(out + OFF_MODEL, h->model_hash);
	return len;
}

static size_t finish(uint8_t *out, size_t len, const uint8_t *key)
{
	return len && dds_proto_mac_sign(out, len, key) ? len : 0;
}

static bool money_ok(double v)
{
	return isfinite(v) && v >= 0.0;
}

/* A message the receiver would accept: 1..16 valid tensors adding up to payload_len. */
static bool tmsg_ok(const struct dds_proto_tmsg *tm)
{
	if (tm->n_tensors < 1 || tm->n_tensors > DDS_PROTO_MAX_TENSORS || !money_ok(tm->value))
		return false;
	uint64_t total = 0;
	for (unsigned i = 0; i < tm->n_tensors; i++) {
		uint64_t n = dds_proto_tensor_bytes(&tm->t[i]);
		if (n == 0)
			return false;
		total += n;
	}
	return total == tm->payload_len;
}

size_t dds_proto_frag_chunk(const struct dds_proto_tmsg *tm, size_t mtu)
{
	size_t fixed = DDS_PROTO_IP_UDP_OVERHEAD + DDS_PROTO_HDR_LEN + dds_proto_tmsg_hdr_len(tm) +
		       DDS_PROTO_MAC_LEN;
	if (!tmsg_ok(tm) || mtu <= fixed)
		return 0;
	size_t room = mtu - fixed;
	size_t max_body = UINT16_MAX - dds_proto_tmsg_hdr_len(tm);
	if (room > max_body)
		room = max_body;
	return room / DDS_PROTO_FRAG_ALIGN * DDS_PROTO_FRAG_ALIGN;
}

unsigned dds_proto_frag_count(const struct dds_proto_tmsg *tm, size_t mtu)
{
	size_t chunk = dds_proto_frag_chunk(tm, mtu);
	if (chunk == 0)
		return 0;
	size_t n = ((size_t)tm->payload_len + chunk - 1) / chunk;
	return n > UINT16_MAX ? 0 : (unsigned)n;
}

size_t dds_proto_encode_frag(const struct dds_proto_hdr *h, const struct dds_proto_tmsg *tm,
			     const void *payload, unsigned index, size_t mtu,
			     const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap)
{
	unsigned count = dds_proto_frag_count(tm, mtu);
	if ((h->type != DDS_MSG_REQUEST && h->type != DDS_MSG_RESULT) || index >= count)
		return 0;
	size_t chunk = dds_proto_frag_chunk(tm, mtu);
	size_t off = (size_t)index * chunk;
	size_t flen = tm->payload_len - off < chunk ? tm->payload_len - off : chunk;
	size_t dlen = dds_proto_tmsg_hdr_len(tm);
	size_t len = put_header(h, h->type, dlen + flen, (uint16_t)index, (uint16_t)count, out, cap);
	if (!len)
		return 0;
	uint8_t *b = out + DDS_PROTO_HDR_LEN;
	putf64(b, tm->value);
	put32(b + 8, tm->payload_len);
	put32(b + 12, (uint32_t)off);
	put16(b + 16, (uint16_t)flen);
	put16(b + 18, tm->n_tensors);
	for (unsigned i = 0; i < tm->n_tensors; i++) {
		uint8_t *d = b + DDS_PROTO_TMSG_LEN + i * DDS_PROTO_TDESC_LEN;
		put16(d, tm->t[i].value_id);
		d[2] = tm->t[i].dtype;
		d[3] = tm->t[i].ndim;
		for (int k = 0; k < DDS_PROTO_MAX_DIMS; k++)
			put32(d + 4 + 4 * k, tm->t[i].dim[k]);
	}
	memcpy(b + dlen, (const uint8_t *)payload + off, flen);
	return finish(out, len, key);
}

size_t dds_proto_encode_register(const struct dds_proto_hdr *h, uint32_t rx_mtu,
				 const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap)
{
	if (rx_mtu < 576 || rx_mtu > 65535)
		return 0;
	size_t len = put_header(h, DDS_MSG_REGISTER, BODY_REGISTER, 0, 1, out, cap);
	if (len)
		put32(out + DDS_PROTO_HDR_LEN, rx_mtu);
	return finish(out, len, key);
}

size_t dds_proto_encode_reg_reply(const struct dds_proto_hdr *h, const struct dds_proto_reg_reply *r,
				  const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap)
{
	if (!money_ok(r->price) || !money_ok(r->p0) || r->work_kind > 1 ||
	    r->n_work > DDS_PROTO_MAX_WORK || (r->work_kind == 1 && r->n_work != 2) ||
	    (r->n_work && !r->work))
		return 0;
	for (unsigned i = 0; i < r->n_work; i++)
		if (!isfinite(r->work[i]))
			return 0;
	size_t len = put_header(h, DDS_MSG_REGISTER_REPLY, BODY_REG_REPLY + 8u * r->n_work, 0, 1,
				out, cap);
	if (!len)
		return 0;
	uint8_t *b = out + DDS_PROTO_HDR_LEN;
	putf64(b, r->price);
	putf64(b + 8, r->p0);
	put32(b + 16, r->max_payload);
	put32(b + 20, r->max_inflight);
	put32(b + 24, r->timeout_ms);
	put16(b + 28, r->work_kind);
	put16(b + 30, r->n_work);
	for (unsigned i = 0; i < r->n_work; i++)
		putf64(b + BODY_REG_REPLY + 8 * i, r->work[i]);
	return finish(out, len, key);
}

/* PRICE, ERROR and BUSY: the price, then `extra_len` bytes of extra (a u16 or u32). */
static size_t encode_priced(const struct dds_proto_hdr *h, uint8_t type, double price,
			    uint32_t extra, size_t extra_len, const uint8_t *key, uint8_t *out,
			    size_t cap)
{
	if (!money_ok(price))
		return 0;
	size_t len = put_header(h, type, 8 + extra_len, 0, 1, out, cap);
	if (!len)
		return 0;
	putf64(out + DDS_PROTO_HDR_LEN, price);
	if (extra_len == 2)
		put16(out + DDS_PROTO_HDR_LEN + 8, (uint16_t)extra);
	else if (extra_len == 4)
		put32(out + DDS_PROTO_HDR_LEN + 8, extra);
	return finish(out, len, key);
}

size_t dds_proto_encode_price(const struct dds_proto_hdr *h, double price,
			      const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap)
{
	return encode_priced(h, DDS_MSG_PRICE, price, 0, 0, key, out, cap);
}

size_t dds_proto_encode_error(const struct dds_proto_hdr *h, double price, uint16_t reason,
			      const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap)
{
	if (reason == DDS_PROTO_OK || reason >= DDS_PROTO_REASON__COUNT)
		return 0;
	return encode_priced(h, DDS_MSG_ERROR, price, reason, 2, key, out, cap);
}

size_t dds_proto_encode_busy(const struct dds_proto_hdr *h, double price, uint32_t retry_ms,
			     const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap)
{
	return encode_priced(h, DDS_MSG_BUSY, price, retry_ms, 4, key, out, cap);
}
