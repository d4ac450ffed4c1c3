/* fuzz_proto.c: libFuzzer target for the parser, MAC, replay window, reassembly and split check.
 *
 * An input is a sequence of records: ctl (1 byte), len (2 bytes, big-endian), len bytes of
 * datagram. ctl bit 0: re-sign the datagram with its device's key (so the fuzzer gets past the
 * MAC into reassembly); bit 1: deliver to the device-role receiver instead of the node's; bits
 * 2-7: advance the clock by that many units of 100 ns first. Invariants checked: completed
 * payloads have their declared length; a parsed single-datagram message re-encodes to the same
 * bytes; nothing is held after everything expired; ASan/UBSan watch the rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds_model.h"
#include "dds_proto.h"

#define N_DEVICES 8

static struct dds_model *model;

static void key_of(uint32_t dev, uint8_t key[DDS_PROTO_KEY_LEN])
{
	for (int i = 0; i < DDS_PROTO_KEY_LEN; i++)
		key[i] = (uint8_t)(dev * 7 + i);
}

/* A two-branch model so that split checks have something to walk. */
static void load_model(void)
{
	static const char *json =
		"{\"format\":\"dds-model/1\",\"name\":\"f\",\"input\":{\"shape\":[4]},\"layers\":["
		"{\"name\":\"a\",\"op\":\"linear\",\"inputs\":[\"input\"],\"out_features\":4},"
		"{\"name\":\"b\",\"op\":\"relu\",\"inputs\":[\"a\"]},"
		"{\"name\":\"c\",\"op\":\"add\",\"inputs\":[\"a\",\"b\"]}],\"output\":\"c\"}";
	struct dds_err err;
	if (dds_model_load_string(json, strlen(json), "fuzz.json", NULL, 1, &model, &err)) {
		fprintf(stderr, "fuzz_proto: %s\n", err.msg);
		abort();
	}
}

/* A single-datagram message re-encoded from its parsed fields. */
static size_t reencode(const struct dds_proto_msg *m, const uint8_t *key, uint8_t *out, size_t cap)
{
	static double work[DDS_PROTO_MAX_WORK];
	struct dds_proto_reg_reply r;
	switch (m->h.type) {
	case DDS_MSG_REGISTER:
		return dds_proto_encode_register(&m->h, m->u.reg.rx_mtu, key, out, cap);
	case DDS_MSG_REGISTER_REPLY:
		r = m->u.reply;
		for (unsigned i = 0; i < r.n_work; i++)
			work[i] = dds_proto_reg_work(m, i);
		r.work = work;
		return dds_proto_encode_reg_reply(&m->h, &r, key, out, cap);
	case DDS_MSG_PRICE:
		return dds_proto_encode_price(&m->h, m->u.price.price, key, out, cap);
	case DDS_MSG_ERROR:
		return dds_proto_encode_error(&m->h, m->u.err.price, m->u.err.reason, key, out, cap);
	case DDS_MSG_BUSY:
		return dds_proto_encode_busy(&m->h, m->u.busy.price, m->u.busy.retry_ms, key, out, cap);
	default:
		return 0;
	}
}

static void check_event(const struct dds_proto_event *ev, const uint8_t *d, size_t len,
			const uint8_t *key)
{
	static uint8_t again[1 << 16];
	if (ev->kind == DDS_EV_COMPLETE) {
		if (ev->len != ev->msg.u.frag.tm.payload_len)
			abort();
		dds_proto_check_split(model, ev->msg.h.model_hash, &ev->msg.u.frag.tm);
		free(ev->buf);
	} else if (ev->kind == DDS_EV_MESSAGE) {
		size_t n = reencode(&ev->msg, key, again, sizeof again);
		/* the same bytes up to the trailer (a fresh nonce), and a tag that verifies */
		if (n != len || memcmp(again, d, len - DDS_PROTO_MAC_LEN) ||
		    !dds_proto_mac_verify(again, n, key))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!model)
		load_model();
	/* One device table per receiver: a table holds its receiver's per-device state. */
	struct dds_proto_devtab *devs[2];
	struct dds_proto_rx *rx[2];
	struct dds_proto_rx_config cfg = {.role = DDS_ROLE_NODE, .max_slots = 16,
					  .max_slots_per_device = 4, .max_bytes = 1 << 16,
					  .max_bytes_per_device = 1 << 14, .max_payload = 1 << 13,
					  .timeout_ns = 5000};
	uint8_t key[DDS_PROTO_KEY_LEN];
	for (int i = 0; i < 2; i++) {
		devs[i] = dds_proto_devtab_new(N_DEVICES);
		for (uint32_t d = 0; d < N_DEVICES; d++) {
			key_of(d, key);
			dds_proto_devtab_add(devs[i], d, key);
		}
		cfg.role = i ? DDS_ROLE_DEVICE : DDS_ROLE_NODE;
		rx[i] = dds_proto_rx_new(&cfg, devs[i], NULL);
	}
	static uint8_t dgram[1 << 16];
	uint64_t now = 0;
	while (size >= 3) {
		uint8_t ctl = data[0];
		size_t len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(dgram, data, len);
		data += len;
		size -= len;
		now += (uint64_t)(ctl >> 2) * 100;
		key_of(len >= 12 ? dgram[11] : 0, key);
		if (ctl & 1)
			dds_proto_mac_sign(dgram, len, key); /* refuses a datagram too short */
		struct dds_proto_event ev;
		dds_proto_rx_input(rx[ctl >> 1 & 1], dgram, len, now, &ev);
		check_event(&ev, dgram, len, key);
	}
	for (int i = 0; i < 2; i++) {
		dds_proto_rx_expire(rx[i], now + cfg.timeout_ns);
		if (dds_proto_rx_slots_used(rx[i]) || dds_proto_rx_bytes_used(rx[i]))
			abort();
		dds_proto_rx_free(rx[i]);
		dds_proto_devtab_free(devs[i]);
	}
	return 0;
}
