/* test_protocol.c: the wire protocol: byte-exact vectors, MAC, replay, parsing, reassembly, split. */
#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "dds_model.h"
#include "dds_proto.h"

/* Reasons observed by expect(); the last test checks that every one was reached. */
static int seen[DDS_PROTO_REASON__COUNT];

#define expect(got, want)                                                                     \
	do {                                                                                  \
		int g_ = (got), w_ = (want);                                                  \
		ck_assert_msg(g_ == w_, "%s:%d: got %s, want %s", __FILE__, __LINE__,         \
			      dds_proto_reason_name(g_), dds_proto_reason_name(w_));          \
		seen[g_]++;                                                                   \
	} while (0)

/* ---- an independent writer of datagrams, field by field from docs/protocol.md ---- */

static void w16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void w32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (24 - 8 * i); }
static void w64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (56 - 8 * i); }
static void wf64(uint8_t *p, double d) { uint64_t v; memcpy(&v, &d, 8); w64(p, v); }

struct craft {
	uint8_t type;
	uint32_t dev;
	uint64_t req, model;
	uint16_t index, count;
	double value;
	uint32_t payload_len, off;
	uint16_t flen, n;
	struct dds_proto_tensor t[DDS_PROTO_MAX_TENSORS];
	const uint8_t *data; /* flen bytes */
};

static void key_of(uint32_t dev, uint8_t key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(dev * 7 + i);
}

/* ---- the MAC (AES-256-GMAC, docs/protocol.md) by another implementation where there is one:
 * libsodium's AES-256-GCM, which needs x86-64 with AES-NI. Elsewhere (the aarch64 build under
 * qemu) the library's own sign/verify stand in; mac_vectors checks those everywhere against tags
 * made by Python's cryptography package. ---- */

static bool sodium_gcm; /* libsodium's AES-256-GCM can run here (set in main) */

/* The tag of d[0 .. len-16) (AAD; the nonce is its last 12 bytes) by libsodium. */
static void sodium_tag(const uint8_t *d, size_t len, const uint8_t key[32], uint8_t tag[16])
{
	unsigned long long tag_len;
	uint8_t none[1];
	crypto_aead_aes256gcm_encrypt_detached(none, tag, &tag_len, NULL, 0, d, len - 16, NULL,
					       d + len - 28, key);
}

/* Sign a crafted datagram: a nonce of our own and libsodium's tag, or the library's signer. */
static void sign_key(uint8_t *d, size_t len, const uint8_t key[32])
{
	static uint64_t nonce;
	if (!sodium_gcm) {
		ck_assert(dds_proto_mac_sign(d, len, key));
		return;
	}
	w32(d + len - 28, 0xdd5);
	w64(d + len - 24, ++nonce);
	sodium_tag(d, len, key, d + len - 16);
}

static void sign(uint8_t *d, size_t len, uint32_t dev)
{
	uint8_t key[32];
	key_of(dev, key);
	sign_key(d, len, key);
}

/* The datagram's trailer is right: by libsodium where it runs, and by the library's verifier. */
static bool tag_ok(const uint8_t *d, size_t len, const uint8_t key[32])
{
	uint8_t tag[16];
	if (sodium_gcm) {
		sodium_tag(d, len, key, tag);
		if (memcmp(tag, d + len - 16, 16) != 0)
			return false;
	}
	return dds_proto_mac_verify(d, len, key);
}

static size_t craft_frag(const struct craft *c, uint8_t *d)
{
	size_t body = 20 + 20 * (size_t)c->n + c->flen, len = 32 + body + 28;
	w16(d, 0x4453);
	d[2] = 2;
	d[3] = c->type;
	w16(d + 4, 0);
	w16(d + 6, (uint16_t)body);
	w32(d + 8, c->dev);
	w16(d + 12, c->index);
	w16(d + 14, c->count);
	w64(d + 16, c->req);
	w64(d + 24, c->model);
	wf64(d + 32, c->value);
	w32(d + 40, c->payload_len);
	w32(d + 44, c->off);
	w16(d + 48, c->flen);
	w16(d + 50, c->n);
	for (int i = 0; i < c->n; i++) {
		uint8_t *t = d + 52 + 20 * i;
		w16(t, c->t[i].value_id);
		t[2] = c->t[i].dtype;
		t[3] = c->t[i].ndim;
		for (int k = 0; k < 4; k++)
			w32(t + 4 + 4 * k, c->t[i].dim[k]);
	}
	memcpy(d + 52 + 20 * c->n, c->data, c->flen);
	sign(d, len, c->dev);
	return len;
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t *len)
{
	size_t n = 0;
	for (const char *p = hex; *p;) {
		if (*p == ' ' || *p == '\n') {
			p++;
			continue;
		}
		unsigned v;
		ck_assert(sscanf(p, "%2x", &v) == 1);
		out[n++] = (uint8_t)v;
		p += 2;
	}
	*len = n;
}

/* The encoder's datagram equals `hex` (everything but the trailer) plus a nonce and a right tag. */
static void check_vector(const uint8_t *enc, size_t enc_len, const char *hex, uint32_t dev)
{
	uint8_t want[256], key[32];
	size_t n;
	hex_to_bytes(hex, want, &n);
	ck_assert_uint_eq(enc_len, n + 28);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(enc[i] == want[i], "byte %zu: %02x, want %02x", i, enc[i], want[i]);
	key_of(dev, key);
	ck_assert(tag_ok(enc, enc_len, key));
}

static const struct dds_proto_tensor t22 = {3, DDS_DTYPE_F32, 2, {2, 2, 0, 0}};

START_TEST(vector_request)
{
	/* docs/protocol.md's worked example, key 00 01 .. 1f (device 0x01020304: key_of would
	 * differ, so this vector signs with its own key). */
	const float data[4] = {1, 2, 3, 4};
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = 0x01020304,
				  .request_id = 5, .model_hash = 0x1122334455667788ull};
	struct dds_proto_tmsg tm = {.value = 2.5, .payload_len = 16, .n_tensors = 1, .t = {t22}};
	uint8_t key[32], out[256];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	ck_assert_uint_eq(dds_proto_frag_count(&tm, 1500), 1);
	size_t len = dds_proto_encode_frag(&h, &tm, data, 0, 1500, key, out, sizeof out);
	static const char *hex =
		"4453 02 03 0000 0038"          /* magic, version 2, REQUEST, flags, body_len 56 */
		"01020304 0000 0001"            /* device id, frag index 0, frag count 1 */
		"0000000000000005"              /* request id */
		"1122334455667788"              /* model hash */
		"4004000000000000"              /* x = 2.5 (f64: sign 0, exp 0x400, mantissa .25) */
		"00000010 00000000 0010 0001"   /* payload_len 16, offset 0, frag_len 16, 1 tensor */
		"0003 01 02 00000002 00000002 00000000 00000000" /* value 3, f32, 2-D [2,2] */
		"0000803f 00000040 00004040 00008040";           /* 1.0f..4.0f little-endian */
	uint8_t want[128];
	size_t n;
	hex_to_bytes(hex, want, &n);
	ck_assert_uint_eq(n, 88);
	ck_assert_uint_eq(len, 116);
	ck_assert(memcmp(out, want, n) == 0);
	ck_assert(tag_ok(out, len, key));

	struct dds_proto_msg m;
	expect(dds_proto_parse(out, len, &m), DDS_PROTO_OK);
	ck_assert_uint_eq(m.h.type, DDS_MSG_REQUEST);
	ck_assert_uint_eq(m.h.device_id, 0x01020304);
	ck_assert_uint_eq(m.h.request_id, 5);
	ck_assert_uint_eq(m.h.model_hash, 0x1122334455667788ull);
	ck_assert(m.u.frag.tm.value == 2.5);
	ck_assert_uint_eq(m.u.frag.tm.payload_len, 16);
	ck_assert_uint_eq(m.u.frag.tm.t[0].value_id, 3);
	ck_assert_uint_eq(m.u.frag.tm.t[0].dim[1], 2);
	ck_assert(memcmp(m.u.frag.data, data, 16) == 0);
	ck_assert(dds_proto_mac_verify(out, len, key));
}
END_TEST

START_TEST(vector_singles)
{
	uint8_t key[32], out[256];
	size_t len;
	struct dds_proto_msg m;
	key_of(7, key);
	struct dds_proto_hdr h = {.device_id = 7, .request_id = 9, .model_hash = 0xabcdef};

	len = dds_proto_encode_register(&h, 9000, key, out, sizeof out);
	check_vector(out, len,
		     "4453 02 01 0000 0004 00000007 0000 0001" /* REGISTER, body 4, dev 7 */
		     "0000000000000009 0000000000abcdef"       /* request 9, model */
		     "00002328",                               /* rx_mtu 9000 */
		     7);
	expect(dds_proto_parse(out, len, &m), DDS_PROTO_OK);
	ck_assert_uint_eq(m.u.reg.rx_mtu, 9000);

	const double work[2] = {0.5, -2.0};
	struct dds_proto_reg_reply r = {.price = 1.0, .p0 = 0.25, .max_payload = 1 << 20,
					.max_inflight = 4, .timeout_ms = 500, .work_kind = 1,
					.n_work = 2, .work = work};
	len = dds_proto_encode_reg_reply(&h, &r, key, out, sizeof out);
	check_vector(out, len,
		     "4453 02 02 0000 0030 00000007 0000 0001"  /* REGISTER_REPLY, body 48 */
		     "0000000000000009 0000000000abcdef"
		     "3ff0000000000000 3fd0000000000000"        /* p = 1, p0 = 0.25 */
		     "00100000 00000004 000001f4 0001 0002"     /* 1 MiB, 4, 500 ms, regression, 2 */
		     "3fe0000000000000 c000000000000000",       /* 0.5, -2.0 */
		     7);
	expect(dds_proto_parse(out, len, &m), DDS_PROTO_OK);
	ck_assert(m.u.reply.p0 == 0.25 && m.u.reply.timeout_ms == 500);
	ck_assert(dds_proto_reg_work(&m, 1) == -2.0);

	h.request_id = 42;
	h.model_hash = 0;
	len = dds_proto_encode_price(&h, 0.5, key, out, sizeof out);
	check_vector(out, len,
		     "4453 02 05 0000 0008 00000007 0000 0001" /* PRICE, body 8 */
		     "000000000000002a 0000000000000000"       /* round 42 */
		     "3fe0000000000000",                       /* p = 0.5 */
		     7);
	ck_assert_uint_eq(len, 68);

	len = dds_proto_encode_error(&h, 1.0, DDS_DROP_BAD_SPLIT, key, out, sizeof out);
	check_vector(out, len,
		     "4453 02 06 0000 000a 00000007 0000 0001" /* ERROR, body 10 */
		     "000000000000002a 0000000000000000"
		     "3ff0000000000000 0019",                  /* p = 1, reason 25 (bad_split) */
		     7);
	expect(dds_proto_parse(out, len, &m), DDS_PROTO_OK);
	ck_assert_uint_eq(m.u.err.reason, DDS_DROP_BAD_SPLIT);

	len = dds_proto_encode_busy(&h, 1.25, 250, key, out, sizeof out);
	check_vector(out, len,
		     "4453 02 07 0000 000c 00000007 0000 0001" /* BUSY, body 12 */
		     "000000000000002a 0000000000000000"
		     "3ff4000000000000 000000fa",              /* p = 1.25, retry 250 ms */
		     7);
	expect(dds_proto_parse(out, len, &m), DDS_PROTO_OK);
	ck_assert(m.u.busy.price == 1.25 && m.u.busy.retry_ms == 250);

	/* Encoders refuse what a receiver would refuse. */
	ck_assert_uint_eq(dds_proto_encode_price(&h, NAN, key, out, sizeof out), 0);
	ck_assert_uint_eq(dds_proto_encode_error(&h, 1, 0, key, out, sizeof out), 0);
	ck_assert_uint_eq(dds_proto_encode_register(&h, 100, key, out, sizeof out), 0);
	ck_assert_uint_eq(dds_proto_encode_busy(&h, 1, 1, key, out, 71), 0); /* needs 72 */
}
END_TEST

/* Tags made by Python's cryptography (AESGCM(key).encrypt(nonce, b"", aad)) for three
 * datagrams: docs/protocol.md's worked example with nonce 00 01 .. 0b, and the shortest (60) and
 * a 1,408-byte datagram of pattern bytes whose last 12 bytes before the tag are the nonce. */
static const struct {
	size_t len;
	uint32_t dev; /* key_of(dev); 0: key 00 01 .. 1f */
	const char *tag;
} mac_vec[] = {
	{116, 0, "7674298e2a6df3af816ca72bdf7eb387"},
	{60, 1, "443f178e92e57a6ac70abff9fd370cbe"},
	{1408, 3, "ad1ecc9307c0074a4c453513e24c164b"},
};

/* Vector k's datagram (tag included) and key. */
static void mac_vec_make(int k, uint8_t *d, uint8_t key[32])
{
	size_t n = mac_vec[k].len - 16, got;
	if (mac_vec[k].dev == 0) {
		for (int i = 0; i < 32; i++)
			key[i] = (uint8_t)i;
		hex_to_bytes("4453 02 03 0000 0038 01020304 0000 0001 0000000000000005"
			     "1122334455667788 4004000000000000 00000010 00000000 0010 0001"
			     "0003 01 02 00000002 00000002 00000000 00000000"
			     "0000803f 00000040 00004040 00008040", d, &got);
		for (int i = 0; i < 12; i++)
			d[88 + i] = (uint8_t)i;
	} else {
		key_of(mac_vec[k].dev, key);
		for (size_t i = 0; i < n; i++)
			d[i] = (uint8_t)(k == 1 ? i * 13 : i * 31 + 7);
	}
	hex_to_bytes(mac_vec[k].tag, d + n, &got);
	ck_assert_uint_eq(got, 16);
}

/* Each vector verifies (and matches libsodium where it runs); any flipped bit, another key or a
 * short length fails; the signer's output over the same bytes verifies again. */
START_TEST(mac_vectors)
{
	static uint8_t d[1408], e[1408];
	uint8_t key[32], other[32], tag[16];
	key_of(9, other);
	for (int k = 0; k < 3; k++) {
		size_t len = mac_vec[k].len;
		mac_vec_make(k, d, key);
		ck_assert_msg(dds_proto_mac_verify(d, len, key), "vector %d", k);
		if (sodium_gcm) {
			sodium_tag(d, len, key, tag);
			ck_assert(memcmp(tag, d + len - 16, 16) == 0);
		}
		ck_assert(!dds_proto_mac_verify(d, len, other));
		for (size_t i = 0; i < len; i++) {
			d[i] ^= (uint8_t)(1 << i % 8);
			ck_assert_msg(!dds_proto_mac_verify(d, len, key), "flip at %zu verified", i);
			d[i] ^= (uint8_t)(1 << i % 8);
		}
		memcpy(e, d, len);
		ck_assert(dds_proto_mac_sign(e, len, key));
		ck_assert(memcmp(e, d, len - 28) == 0);
		ck_assert(memcmp(e + len - 28, d + len - 28, 12) != 0); /* a nonce of its own */
		ck_assert(tag_ok(e, len, key));
	}
	ck_assert(!dds_proto_mac_verify(d, 59, key));
	ck_assert(!dds_proto_mac_sign(e, 59, key));
}
END_TEST

/* The signer's tag of d[0 .. len) equals libsodium's where it runs, verifies, and fails with
 * the last AAD byte flipped. */
static void mac_check_length(uint8_t *d, size_t len, const uint8_t key[32])
{
	uint8_t tag[16];
	ck_assert(dds_proto_mac_sign(d, len, key));
	if (sodium_gcm) {
		sodium_tag(d, len, key, tag);
		ck_assert_msg(memcmp(tag, d + len - 16, 16) == 0, "length %zu", len);
	}
	ck_assert(dds_proto_mac_verify(d, len, key));
	d[len - 17] ^= 0x80;
	ck_assert_msg(!dds_proto_mac_verify(d, len, key), "length %zu", len);
	d[len - 17] ^= 0x80;
}

/* Every datagram length from the shortest to past the largest standard MTU, and some jumbo and
 * maximal ones: the GHASH code paths differ by the length's remainder mod 16 and by its size in
 * blocks. */
START_TEST(mac_every_length)
{
	static uint8_t d[65535];
	static const size_t big[] = {4095, 4096, 8920, 9000, 9017, 65535};
	uint8_t key[32];
	key_of(11, key);
	for (size_t i = 0; i < sizeof d; i++)
		d[i] = (uint8_t)(i * 167 + 13);
	for (size_t len = 60; len <= 2200; len++)
		mac_check_length(d, len, key);
	for (size_t k = 0; k < sizeof big / sizeof *big; k++)
		mac_check_length(d, big[k], key);
}
END_TEST

/* One thread's nonces are its base plus 0, 1, 2, ...: consecutive 96-bit big-endian integers. */
START_TEST(mac_nonce_counter)
{
	uint8_t key[32], d[64] = {0}, prev[12];
	key_of(1, key);
	for (int i = 0; i < 5000; i++) {
		ck_assert(dds_proto_mac_sign(d, sizeof d, key));
		const uint8_t *nonce = d + sizeof d - 28;
		if (i > 0) {
			int j = 11; /* prev + 1, with the carry */
			while (j >= 0 && ++prev[j] == 0)
				j--;
			ck_assert_msg(memcmp(prev, nonce, 12) == 0, "nonce %d is not the last + 1", i);
		}
		memcpy(prev, nonce, 12);
		ck_assert(tag_ok(d, sizeof d, key));
	}
}
END_TEST

/* The per-thread key cache: 600 devices (more than its 256 entries, so entries are shared and
 * re-keyed) signed and verified interleaved, each under its own key and never under another's. */
START_TEST(mac_key_cache)
{
	enum { N = 600 };
	static uint8_t d[N][80];
	uint8_t key[32], other[32];
	for (uint32_t i = 0; i < N; i++) {
		for (int b = 0; b < 52; b++)
			d[i][b] = (uint8_t)(i + b);
		w32(d[i] + 8, i * 7919u);
		key_of(i, key);
		ck_assert(dds_proto_mac_sign(d[i], sizeof d[i], key));
	}
	for (uint32_t r = 0; r < 3 * N; r++) {
		uint32_t i = r * 37 % N;
		key_of(i, key);
		key_of(i + 1, other);
		ck_assert_msg(tag_ok(d[i], sizeof d[i], key), "device %u", i);
		ck_assert(!dds_proto_mac_verify(d[i], sizeof d[i], other));
	}
}
END_TEST

/* The window against a brute-force reference: the full set of accepted ids. */
START_TEST(replay_window)
{
	struct dds_replay w = {0};
	static uint8_t acc[4096];
	uint64_t max = 0;
	bool any = false;
	memset(acc, 0, sizeof acc);
	srand(3);
	for (int i = 0; i < 20000; i++) {
		uint64_t id = (uint64_t)(i / 5) + (uint64_t)(rand() % 90) - 45;
		if (id >= sizeof acc)
			continue;
		bool fresh = !acc[id] && (!any || id > max || max - id < 64);
		ck_assert_msg(dds_replay_check(&w, id) == fresh, "id %llu", (unsigned long long)id);
		if (fresh) {
			dds_replay_commit(&w, id);
			acc[id] = 1;
			max = any && max > id ? max : id;
			any = true;
		}
	}
	struct dds_replay v = {0};
	dds_replay_commit(&v, 1000);
	ck_assert(!dds_replay_check(&v, 936) && dds_replay_check(&v, 937));
	dds_replay_commit(&v, 1000 + 200); /* a jump wider than the window clears it */
	ck_assert(dds_replay_check(&v, 1199) && !dds_replay_check(&v, 1200));
}
END_TEST

START_TEST(reason_names)
{
	for (int i = 0; i < DDS_PROTO_REASON__COUNT; i++) {
		const char *a = dds_proto_reason_name(i);
		ck_assert(a && *a && strcmp(a, "unknown"));
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(a, dds_proto_reason_name(j));
	}
	ck_assert_str_eq(dds_proto_reason_name(-1), "unknown");
	ck_assert_str_eq(dds_proto_reason_name(DDS_PROTO_REASON__COUNT), "unknown");
	ck_assert_str_eq(dds_proto_reason_name(DDS_DROP_BAD_MAC), "bad_mac");
}
END_TEST

/* ---- a receiver fixture ---- */

static struct dds_proto_devtab *devs;
static struct dds_proto_rx *rx;
static uint8_t blob[1 << 16]; /* payload source: byte i = i * 31 + 7 */

static struct dds_proto_rx_config node_cfg(void)
{
	return (struct dds_proto_rx_config){.role = DDS_ROLE_NODE, .max_slots = 8,
					    .max_slots_per_device = 3, .max_bytes = 4096,
					    .max_bytes_per_device = 2048, .max_payload = 1024,
					    .timeout_ns = 1000};
}

static void make_rx(struct dds_proto_rx_config cfg, const struct dds_proto_alloc *alloc)
{
	uint8_t key[32];
	devs = dds_proto_devtab_new(16);
	ck_assert_ptr_nonnull(devs);
	for (uint32_t d = 1; d <= 10; d++) {
		key_of(d, key);
		ck_assert_int_eq(dds_proto_devtab_add(devs, d, key), 0);
	}
	rx = dds_proto_rx_new(&cfg, devs, alloc);
	ck_assert_ptr_nonnull(rx);
	for (size_t i = 0; i < sizeof blob; i++)
		blob[i] = (uint8_t)(i * 31 + 7);
}

static void drop_rx(void)
{
	dds_proto_rx_free(rx);
	dds_proto_devtab_free(devs);
	rx = NULL;
	devs = NULL;
}

/* A one-tensor request of `len` bytes (a multiple of 4), the fragment [off, off+flen). */
static struct craft req(uint32_t dev, uint64_t id, uint32_t len, uint32_t off, uint16_t flen,
			uint16_t count)
{
	struct craft c = {.type = DDS_MSG_REQUEST, .dev = dev, .req = id, .model = 99,
			  .count = count, .value = 1.5, .payload_len = len, .off = off,
			  .flen = flen, .n = 1, .data = blob + off};
	c.t[0] = (struct dds_proto_tensor){1, DDS_DTYPE_F32, 1, {len / 4, 0, 0, 0}};
	return c;
}

/* Feed a crafted fragment; returns the event's reason, *ev filled. */
static int feed(const struct craft *c, uint64_t now, struct dds_proto_event *ev)
{
	uint8_t d[2048];
	size_t len = craft_frag(c, d);
	dds_proto_rx_input(rx, d, len, now, ev);
	return ev->reason;
}

static void complete_ok(struct dds_proto_event *ev, uint32_t len)
{
	ck_assert_int_eq(ev->kind, DDS_EV_COMPLETE);
	ck_assert_uint_eq(ev->len, len);
	ck_assert(memcmp(ev->buf, blob, len) == 0);
	free(ev->buf);
}

/* Reasons 1-9: mutate one field of a valid datagram, re-sign, and feed it. */
START_TEST(parse_reasons)
{
	make_rx(node_cfg(), NULL);
	struct craft base = req(1, 1, 64, 0, 64, 1);
	static const struct {
		size_t off;      /* byte to overwrite (after crafting) */
		uint8_t val;
		int want;
	} cases[] = {
		{0, 0x45, DDS_DROP_BAD_MAGIC},
		{2, 1, DDS_DROP_BAD_VERSION},              /* version 1: BLAKE2b MAC, refused */
		{2, 3, DDS_DROP_BAD_VERSION},
		{3, 8, DDS_DROP_BAD_TYPE},
		{3, 0, DDS_DROP_BAD_TYPE},
		{5, 1, DDS_DROP_BAD_FLAGS},
		{7, 0x50, DDS_DROP_BAD_LENGTH},            /* body_len disagrees */
		{15, 0, DDS_DROP_BAD_FRAGMENT},            /* frag_count 0 */
		{13, 1, DDS_DROP_BAD_FRAGMENT},            /* index 1 of 1 */
		{47, 4, DDS_DROP_BAD_FRAGMENT},            /* offset 4: misaligned */
		{49, 0x3f, DDS_DROP_BAD_LENGTH},           /* frag_len vs body_len */
		{51, 0, DDS_DROP_BAD_TENSOR},              /* 0 tensors */
		{51, 17, DDS_DROP_BAD_TENSOR},             /* 17 tensors */
		{51, 5, DDS_DROP_BAD_LENGTH},              /* 5 descriptors do not fit the body */
		{54, 2, DDS_DROP_BAD_TENSOR},              /* float16: reserved */
		{54, 0, DDS_DROP_BAD_TENSOR},              /* dtype 0 */
		{55, 0, DDS_DROP_BAD_TENSOR},              /* ndim 0 */
		{55, 5, DDS_DROP_BAD_TENSOR},              /* ndim 5 */
		{59, 15, DDS_DROP_BAD_TENSOR},             /* size 60 != payload_len 64 */
		{63, 1, DDS_DROP_BAD_TENSOR},              /* dim past ndim not 0 */
		{32, 0xbf, DDS_DROP_BAD_VALUE},            /* x = 0xbff8...: -1.5 */
		{32, 0x7f, DDS_DROP_BAD_VALUE},            /* x = 0x7ff8...: NaN */
	};
	uint8_t d[2048], m[2048];
	struct dds_proto_event ev;
	struct dds_proto_msg msg;
	size_t len = craft_frag(&base, d);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(m, d, len);
		m[cases[i].off] = cases[i].val;
		sign(m, len, 1);
		expect(dds_proto_parse(m, len, &msg), cases[i].want);
		dds_proto_rx_input(rx, m, len, 0, &ev);
		ck_assert_int_eq(ev.reason, cases[i].want);
		ck_assert_int_eq(ev.kind, DDS_EV_NONE);
	}
	expect(dds_proto_parse(d, 59, &msg), DDS_DROP_TRUNCATED);
	expect(dds_proto_parse(d, len - 1, &msg), DDS_DROP_BAD_LENGTH);

	/* Fragment geometry: past the payload, unaligned non-final length, too many fragments. */
	struct craft c = req(1, 2, 64, 56, 16, 2);
	expect(feed(&c, 0, &ev), DDS_DROP_BAD_FRAGMENT);
	c = req(1, 2, 64, 0, 12, 2);
	expect(feed(&c, 0, &ev), DDS_DROP_BAD_FRAGMENT);
	c = req(1, 2, 64, 0, 8, 9);
	expect(feed(&c, 0, &ev), DDS_DROP_BAD_FRAGMENT);
	c = req(1, 2, 64, 0, 8, 8); /* 8 fragments of 8 bytes: fine */
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	c = req(1, 2, 64, 0, 0, 8);
	expect(feed(&c, 0, &ev), DDS_DROP_BAD_FRAGMENT);

	/* Single-datagram bodies. */
	uint8_t key[32];
	key_of(1, key);
	struct dds_proto_hdr h = {.device_id = 1, .request_id = 3};
	len = dds_proto_encode_register(&h, 1500, key, m, sizeof m);
	w32(m + 32, 100);
	sign(m, len, 1);
	expect(dds_proto_parse(m, len, &msg), DDS_DROP_BAD_VALUE); /* rx_mtu 100 */
	w16(m + 14, 2);
	sign(m, len, 1);
	expect(dds_proto_parse(m, len, &msg), DDS_DROP_BAD_FRAGMENT); /* REGISTER in 2 fragments */
	len = dds_proto_encode_error(&h, 1, DDS_DROP_TIMEOUT, key, m, sizeof m);
	w16(m + 40, DDS_PROTO_REASON__COUNT);
	expect(dds_proto_parse(m, len, &msg), DDS_DROP_BAD_VALUE);
	len = dds_proto_encode_busy(&h, 1, 5, key, m, sizeof m);
	w16(m + 6, 8); /* body_len 8, datagram 4 bytes shorter: BUSY's body is 12 */
	expect(dds_proto_parse(m, len - 4, &msg), DDS_DROP_BAD_LENGTH);
	const double w[3] = {1, 2, INFINITY};
	struct dds_proto_reg_reply r = {.price = 1, .p0 = 1, .work_kind = 0, .n_work = 3, .work = w};
	ck_assert_uint_eq(dds_proto_encode_reg_reply(&h, &r, key, m, sizeof m), 0);
	r.n_work = 2;
	len = dds_proto_encode_reg_reply(&h, &r, key, m, sizeof m);
	expect(dds_proto_parse(m, len, &msg), DDS_PROTO_OK);
	w16(m + 32 + 28, 2); /* unknown work kind */
	expect(dds_proto_parse(m, len, &msg), DDS_DROP_BAD_VALUE);
	w16(m + 32 + 28, 0);
	wf64(m + 32 + 40, INFINITY); /* work[1] not finite */
	expect(dds_proto_parse(m, len, &msg), DDS_DROP_BAD_VALUE);
	wf64(m + 32 + 40, 2);
	w16(m + 32 + 30, 1); /* n_work 1 disagrees with body_len */
	expect(dds_proto_parse(m, len, &msg), DDS_DROP_BAD_LENGTH);
	drop_rx();
}
END_TEST

/* Forged, unknown-device, wrong-direction and replayed datagrams: dropped, counted, never
 * completed (so never billed). */
/* Device 1's REGISTER (rx_mtu 1500, model 99) with request id `id` into m[cap]; its length. */
static size_t register_dgram(uint64_t id, uint8_t *m, size_t cap)
{
	uint8_t key[32];
	key_of(1, key);
	struct dds_proto_hdr h = {.device_id = 1, .request_id = id, .model_hash = 99};
	return dds_proto_encode_register(&h, 1500, key, m, cap);
}

START_TEST(rx_auth)
{
	make_rx(node_cfg(), NULL);
	struct dds_proto_event ev;
	uint8_t d[2048];
	struct craft c = req(1, 10, 64, 0, 64, 1);
	size_t len = craft_frag(&c, d);

	d[80] ^= 0x40; /* a forged payload byte */
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_DROP_BAD_MAC);
	d[80] ^= 0x40;
	uint8_t key2[32];
	key_of(2, key2); /* signed with another device's key */
	sign_key(d, len, key2);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_DROP_BAD_MAC);
	ck_assert_int_eq(ev.kind, DDS_EV_NONE);

	c.dev = 77; /* no key configured */
	expect(feed(&c, 0, &ev), DDS_DROP_UNKNOWN_DEVICE);
	c.dev = 1;
	c.type = DDS_MSG_RESULT; /* node -> device type sent to the node */
	expect(feed(&c, 0, &ev), DDS_DROP_UNEXPECTED_TYPE);
	c.type = DDS_MSG_REQUEST;

	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	complete_ok(&ev, 64);
	expect(feed(&c, 0, &ev), DDS_DROP_REPLAY); /* the same request again */
	ck_assert_int_eq(ev.kind, DDS_EV_NONE);
	c.req = 200;
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	complete_ok(&ev, 64);
	c.req = 11; /* never seen, but more than 64 below 200 */
	expect(feed(&c, 0, &ev), DDS_DROP_REPLAY);
	c.req = 150; /* never seen, within the window */
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	complete_ok(&ev, 64);

	/* REGISTER shares the window and comes back as a message. */
	uint8_t m[128];
	len = register_dgram(201, m, sizeof m);
	dds_proto_rx_input(rx, m, len, 0, &ev);
	expect(ev.reason, DDS_PROTO_OK);
	ck_assert_int_eq(ev.kind, DDS_EV_MESSAGE);
	ck_assert_uint_eq(ev.msg.u.reg.rx_mtu, 1500);
	dds_proto_rx_input(rx, m, len, 0, &ev);
	expect(ev.reason, DDS_DROP_REPLAY);

	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_BAD_MAC), 2);
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_REPLAY), 3);
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_PROTO_OK), 4);
	ck_assert_uint_eq(dds_proto_rx_count(rx, -3), 0);
	drop_rx();
}
END_TEST

/* accept_replays (load tests): the same authenticated request and REGISTER are accepted again,
 * ids far below the window too (no mark, no undefined shift); forgeries still fail the MAC. */
START_TEST(rx_accept_replays)
{
	struct dds_proto_rx_config cfg = node_cfg();
	cfg.accept_replays = true;
	make_rx(cfg, NULL);
	struct dds_proto_event ev;
	uint8_t d[2048];
	struct craft c = req(1, 10, 64, 0, 64, 1);
	size_t len = craft_frag(&c, d);

	for (int pass = 0; pass < 3; pass++) {
		dds_proto_rx_input(rx, d, len, 0, &ev);
		expect(ev.reason, DDS_PROTO_OK);
		complete_ok(&ev, 64);
	}
	c.req = 500;
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	complete_ok(&ev, 64);
	c.req = 10; /* 490 below the top: accepted again */
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	complete_ok(&ev, 64);

	uint8_t m[128];
	len = register_dgram(3, m, sizeof m);
	for (int pass = 0; pass < 2; pass++) {
		dds_proto_rx_input(rx, m, len, 0, &ev);
		expect(ev.reason, DDS_PROTO_OK);
		ck_assert_int_eq(ev.kind, DDS_EV_MESSAGE);
	}
	m[40] ^= 1;
	dds_proto_rx_input(rx, m, len, 0, &ev);
	expect(ev.reason, DDS_DROP_BAD_MAC);
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_REPLAY), 0);
	drop_rx();
}
END_TEST

/* Fragments of `len` bytes in chunks of `chunk`, fed in a random order with random duplicates,
 * and on odd trials mixed with a second, differently chunked copy that overlaps the first (same
 * descriptor): the buffer must equal the payload. */
START_TEST(rx_order)
{
	struct dds_proto_rx_config cfg = node_cfg();
	cfg.max_payload = cfg.max_bytes = cfg.max_bytes_per_device = 1 << 16;
	make_rx(cfg, NULL);
	srand(11);
	uint64_t id = 1;
	for (int trial = 0; trial < 200; trial++, id++) {
		uint32_t len = 4 * (1 + rand() % 1000);
		uint32_t chunk = 8 * (1 + rand() % 64), chunk2 = 8 * (1 + rand() % 64);
		uint16_t cnt = (uint16_t)((len + chunk - 1) / chunk);
		static struct craft f[2048];
		int n = 0;
		for (int copy = 0; copy < 1 + trial % 2; copy++) {
			uint32_t step = copy ? chunk2 : chunk;
			for (uint32_t off = 0; off < len; off += step)
				f[n++] = req(1, id, len, off,
					     (uint16_t)(len - off < step ? len - off : step), cnt);
		}
		for (int i = n - 1; i > 0; i--) {
			int j = rand() % (i + 1);
			struct craft t = f[i];
			f[i] = f[j];
			f[j] = t;
		}
		struct dds_proto_event ev = {0};
		bool done = false;
		for (int i = 0; i < n && !done; i++) {
			int r = feed(&f[i], 0, &ev);
			ck_assert_msg(r == DDS_PROTO_OK || r == DDS_DROP_DUPLICATE, "trial %d: %s", trial,
				      dds_proto_reason_name(r));
			if (rand() % 4 == 0 && ev.kind != DDS_EV_COMPLETE)
				expect(feed(&f[i], 0, &ev), DDS_DROP_DUPLICATE);
			done = ev.kind == DDS_EV_COMPLETE;
		}
		ck_assert_msg(done, "trial %d incomplete", trial);
		ck_assert(memcmp(ev.buf, blob, len) == 0);
		ck_assert(ev.msg.u.frag.tm.value == 1.5);
		free(ev.buf);
		ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 0);
		ck_assert_uint_eq(dds_proto_rx_bytes_used(rx), 0);
	}
	drop_rx();
}
END_TEST

/* An allocator that counts, and refuses when told to. */
static int n_alloc, n_release, refuse;
static void *count_alloc(void *ctx, const struct dds_proto_msg *m, size_t len)
{
	(void)ctx;
	ck_assert_uint_eq(len, m->u.frag.tm.payload_len);
	if (refuse)
		return NULL;
	n_alloc++;
	return malloc(len);
}
static void count_release(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)len;
	n_release++;
	free(buf);
}

START_TEST(rx_limits)
{
	struct dds_proto_alloc a = {count_alloc, count_release, NULL};
	n_alloc = n_release = refuse = 0;
	make_rx(node_cfg(), &a); /* 8 slots, 3 per device, 4096 bytes, 2048 per device */
	struct dds_proto_event ev;
	struct craft c = req(1, 1, 1032, 0, 8, 100);
	expect(feed(&c, 0, &ev), DDS_DROP_TOO_LARGE);
	c = req(1, 1, 1024, 0, 8, 100);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* device 1: 1024 */
	c = req(1, 2, 1024, 0, 8, 100);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* device 1: 2048 */
	c = req(1, 3, 8, 0, 8, 1);
	expect(feed(&c, 0, &ev), DDS_DROP_DEVICE_MEMORY);
	for (uint64_t i = 1; i <= 3; i++) {
		c = req(2, i, 16, 0, 8, 2);
		expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	}
	c = req(2, 4, 16, 0, 8, 2);
	expect(feed(&c, 0, &ev), DDS_DROP_DEVICE_SLOTS);
	c = req(3, 1, 1024, 0, 8, 100);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* total 3072 + 48 */
	c = req(4, 1, 1024, 0, 8, 100);
	expect(feed(&c, 0, &ev), DDS_DROP_MEMORY);
	c = req(5, 1, 16, 0, 8, 2);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* 7 slots */
	c = req(6, 1, 16, 0, 8, 2);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* 8 slots */
	c = req(7, 1, 16, 0, 8, 2);
	expect(feed(&c, 0, &ev), DDS_DROP_TABLE_FULL);
	ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 8);
	ck_assert_uint_eq(dds_proto_rx_bytes_used(rx), 3 * 1024 + 5 * 16);

	/* A refused buffer: nothing is held, the id is not burnt. */
	refuse = 1;
	c = req(7, 1, 16, 0, 8, 2);
	expect(feed(&c, 999, &ev), DDS_DROP_TABLE_FULL);
	expect(feed(&c, 1000, &ev), DDS_DROP_ALLOC_FAILED); /* full table expired first */
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_TIMEOUT), 8);
	ck_assert_uint_eq(n_release, 8);
	refuse = 0;
	expect(feed(&c, 1000, &ev), DDS_PROTO_OK);
	c.off = 8;
	c.data = blob + 8;
	expect(feed(&c, 1001, &ev), DDS_PROTO_OK);
	complete_ok(&ev, 16);
	ck_assert_uint_eq(n_alloc, 9);
	ck_assert_uint_eq(n_release, 8); /* a completed buffer is the caller's */
	ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 0);
	ck_assert_uint_eq(dds_proto_rx_bytes_used(rx), 0);
	drop_rx();
}
END_TEST

/* Stopping: drain hands back every partial message's header (then nothing is held); a
 * completed message carries its first fragment's time; the stop and backend refusals travel
 * in ERROR like any reason. */
static struct dds_proto_hdr drained[8];
static uint64_t drained_first[8];
static unsigned n_drained;
static void on_drain(void *arg, const struct dds_proto_hdr *h, uint64_t first_ns)
{
	ck_assert_ptr_eq(arg, &n_drained);
	ck_assert_uint_lt(n_drained, 8);
	drained_first[n_drained] = first_ns;
	drained[n_drained++] = *h;
}

START_TEST(rx_drain_and_stop_reasons)
{
	struct dds_proto_alloc a = {count_alloc, count_release, NULL};
	n_alloc = n_release = refuse = 0;
	n_drained = 0;
	make_rx(node_cfg(), &a);
	struct dds_proto_event ev;
	struct craft c = req(1, 7, 16, 0, 8, 2);
	expect(feed(&c, 100, &ev), DDS_PROTO_OK);
	c.off = 8;
	c.data = blob + 8;
	expect(feed(&c, 350, &ev), DDS_PROTO_OK);
	ck_assert_uint_eq(ev.first_ns, 100); /* the first fragment's time, not the last's */
	complete_ok(&ev, 16);
	c = req(2, 9, 24, 8, 8, 3);
	expect(feed(&c, 400, &ev), DDS_PROTO_OK);
	c = req(3, 4, 16, 0, 8, 2);
	expect(feed(&c, 500, &ev), DDS_PROTO_OK);
	ck_assert_uint_eq(dds_proto_rx_drain(rx, on_drain, &n_drained), 2);
	ck_assert_uint_eq(n_drained, 2);
	for (unsigned i = 0; i < 2; i++) {
		bool two = drained[i].device_id == 2;
		ck_assert(two || drained[i].device_id == 3);
		ck_assert_uint_eq(drained[i].type, DDS_MSG_REQUEST);
		ck_assert_uint_eq(drained[i].request_id, two ? 9 : 4);
		ck_assert_uint_eq(drained[i].frag_count, two ? 3 : 2);
		ck_assert_uint_eq(drained[i].model_hash, 99);
		ck_assert_uint_eq(drained_first[i], two ? 400 : 500);
	}
	ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 0);
	ck_assert_uint_eq(dds_proto_rx_bytes_used(rx), 0);
	ck_assert_uint_eq(n_release, 2);
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_TIMEOUT), 0);
	ck_assert_uint_eq(dds_proto_rx_drain(rx, NULL, NULL), 0);
	drop_rx();

	/* The two refusals a node makes after the split check, through the codec. */
	static const int stop_reasons[] = {DDS_DROP_EXEC_FAILED, DDS_DROP_SHUTTING_DOWN};
	uint8_t key[32], d[128];
	struct dds_proto_msg m;
	key_of(5, key);
	for (int i = 0; i < 2; i++) {
		struct dds_proto_hdr h = {.type = DDS_MSG_ERROR, .device_id = 5, .request_id = 3,
					  .frag_count = 1, .model_hash = 1};
		size_t len = dds_proto_encode_error(&h, 1.0, (uint16_t)stop_reasons[i], key, d,
						    sizeof d);
		ck_assert_uint_eq(len, 32 + 10 + 28);
		ck_assert_uint_eq(d[32 + 8] << 8 | d[32 + 9], (unsigned)stop_reasons[i]);
		expect(dds_proto_parse(d, len, &m), DDS_PROTO_OK);
		expect(m.u.err.reason, stop_reasons[i]);
	}
	ck_assert_str_eq(dds_proto_reason_name(DDS_DROP_EXEC_FAILED), "exec_failed");
	ck_assert_str_eq(dds_proto_reason_name(DDS_DROP_SHUTTING_DOWN), "shutting_down");
}
END_TEST

START_TEST(rx_conflicts)
{
	struct dds_proto_alloc a = {count_alloc, count_release, NULL};
	n_alloc = n_release = refuse = 0;
	make_rx(node_cfg(), &a);
	struct dds_proto_event ev;

	/* A later fragment with another budget: inconsistent, message dropped. */
	struct craft c = req(1, 1, 64, 0, 32, 2);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	c = req(1, 1, 64, 32, 32, 2);
	c.value = 9.0;
	expect(feed(&c, 0, &ev), DDS_DROP_INCONSISTENT);
	ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 0);
	c.value = 1.5;
	expect(feed(&c, 0, &ev), DDS_DROP_REPLAY); /* late fragment of a dropped message */

	/* Other descriptor fields: shape, model, count. */
	struct craft b = req(1, 2, 64, 0, 32, 2);
	expect(feed(&b, 0, &ev), DDS_PROTO_OK);
	b = req(1, 2, 64, 32, 32, 2);
	b.t[0] = (struct dds_proto_tensor){1, DDS_DTYPE_F32, 2, {4, 4, 0, 0}};
	expect(feed(&b, 0, &ev), DDS_DROP_INCONSISTENT);
	b = req(1, 3, 64, 0, 32, 2);
	expect(feed(&b, 0, &ev), DDS_PROTO_OK);
	b = req(1, 3, 64, 32, 32, 3);
	expect(feed(&b, 0, &ev), DDS_DROP_INCONSISTENT);
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_INCONSISTENT), 3);

	/* Overlap with different bytes: dropped. Overlap with equal bytes: accepted. */
	static uint8_t alt[64];
	memcpy(alt, blob, 64);
	alt[20] ^= 1;
	c = req(1, 4, 64, 0, 24, 3);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK);
	c = req(1, 4, 64, 16, 24, 3);
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* [16,40) overlaps [0,24), same bytes */
	c.data = alt + 16;
	c.off = 16;
	expect(feed(&c, 0, &ev), DDS_DROP_OVERLAP_CONFLICT);
	ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 0);
	c = req(1, 5, 64, 0, 64, 1);
	c.data = alt;
	expect(feed(&c, 0, &ev), DDS_PROTO_OK); /* whole payload at once */
	ck_assert_int_eq(ev.kind, DDS_EV_COMPLETE);
	ck_assert(memcmp(ev.buf, alt, 64) == 0);
	free(ev.buf);

	/* Timeouts: lazily on the next fragment, and by dds_proto_rx_expire(). */
	c = req(1, 6, 64, 0, 32, 2);
	expect(feed(&c, 100, &ev), DDS_PROTO_OK);
	c = req(1, 6, 64, 32, 32, 2);
	expect(feed(&c, 1100, &ev), DDS_DROP_TIMEOUT); /* deadline 100 + 1000 */
	c = req(1, 7, 64, 0, 32, 2);
	expect(feed(&c, 2000, &ev), DDS_PROTO_OK);
	ck_assert_uint_eq(dds_proto_rx_expire(rx, 2999), 0);
	ck_assert_uint_eq(dds_proto_rx_expire(rx, 3000), 1);
	ck_assert_uint_eq(dds_proto_rx_count(rx, DDS_DROP_TIMEOUT), 2);
	ck_assert_uint_eq(dds_proto_rx_slots_used(rx), 0);
	ck_assert_uint_eq(n_alloc, n_release + 1);
	drop_rx();
}
END_TEST

/* A device receives a result fragmented at both MTUs, each fragment carrying the price; price
 * rounds must increase; ERROR, BUSY and REGISTER_REPLY come back as messages. */
START_TEST(device_role)
{
	struct dds_proto_rx_config cfg = node_cfg();
	cfg.role = DDS_ROLE_DEVICE;
	cfg.max_payload = cfg.max_bytes = cfg.max_bytes_per_device = 1 << 20;
	make_rx(cfg, NULL);
	uint8_t key[32], d[9000];
	key_of(3, key);
	struct dds_proto_event ev;
	static const size_t mtus[] = {1500, 9000};
	static float res[1000 * 10];
	for (size_t i = 0; i < 10000; i++)
		res[i] = (float)i * 0.5f;
	struct dds_proto_tmsg tm = {.value = 0.75, .payload_len = sizeof res, .n_tensors = 1};
	tm.t[0] = (struct dds_proto_tensor){9, DDS_DTYPE_F32, 2, {1000, 10, 0, 0}};
	for (int k = 0; k < 2; k++) {
		struct dds_proto_hdr h = {.type = DDS_MSG_RESULT, .device_id = 3,
					  .request_id = 10 + k, .model_hash = 5};
		unsigned n = dds_proto_frag_count(&tm, mtus[k]);
		size_t chunk = (mtus[k] - 28 - 32 - 40 - 28) / 8 * 8; /* docs/protocol.md */
		ck_assert_uint_eq(dds_proto_frag_chunk(&tm, mtus[k]), chunk);
		ck_assert_uint_eq(n, (sizeof res + chunk - 1) / chunk);
		for (unsigned i = n; i-- > 0;) { /* last fragment first */
			size_t len = dds_proto_encode_frag(&h, &tm, res, i, mtus[k], key, d, sizeof d);
			ck_assert(len > 0 && len <= mtus[k] - 28);
			struct dds_proto_msg m;
			expect(dds_proto_parse(d, len, &m), DDS_PROTO_OK);
			ck_assert(m.u.frag.tm.value == 0.75);
			dds_proto_rx_input(rx, d, len, 0, &ev);
			expect(ev.reason, DDS_PROTO_OK);
		}
		ck_assert_int_eq(ev.kind, DDS_EV_COMPLETE);
		ck_assert(memcmp(ev.buf, res, sizeof res) == 0);
		free(ev.buf);
	}
	ck_assert_uint_eq(dds_proto_frag_count(&tm, 100), 0);
	ck_assert_uint_eq(dds_proto_encode_frag(&(struct dds_proto_hdr){.type = DDS_MSG_PRICE}, &tm,
						res, 0, 1500, key, d, sizeof d), 0);

	struct dds_proto_hdr h = {.device_id = 3, .request_id = 5};
	size_t len = dds_proto_encode_price(&h, 2.0, key, d, sizeof d);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_PROTO_OK);
	ck_assert(ev.kind == DDS_EV_MESSAGE && ev.msg.u.price.price == 2.0);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_DROP_REPLAY); /* round 5 again */
	h.request_id = 4;
	len = dds_proto_encode_price(&h, 2.0, key, d, sizeof d);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_DROP_REPLAY); /* older round */

	h.request_id = 12;
	len = dds_proto_encode_error(&h, 2.0, DDS_DROP_BAD_SPLIT, key, d, sizeof d);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	ck_assert(ev.kind == DDS_EV_MESSAGE && ev.msg.u.err.reason == DDS_DROP_BAD_SPLIT);
	h.request_id = 13;
	len = dds_proto_encode_busy(&h, 2.0, 7, key, d, sizeof d);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	ck_assert(ev.kind == DDS_EV_MESSAGE && ev.msg.u.busy.retry_ms == 7);
	h.request_id = 11; /* the id of a result already received */
	len = dds_proto_encode_busy(&h, 2.0, 7, key, d, sizeof d);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_DROP_REPLAY);
	len = dds_proto_encode_register(&h, 1500, key, d, sizeof d);
	dds_proto_rx_input(rx, d, len, 0, &ev);
	expect(ev.reason, DDS_DROP_UNEXPECTED_TYPE);
	drop_rx();
}
END_TEST

/* The encoder against the hand writer, on random messages with several tensors. */
START_TEST(encoder_vs_craft)
{
	uint8_t key[32], a[9000], b[9000];
	static uint8_t payload[1 << 16];
	key_of(4, key);
	srand(5);
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)rand();
	for (int trial = 0; trial < 100; trial++) {
		struct dds_proto_tmsg tm = {.value = rand() / 7.0, .n_tensors = 1 + rand() % 16};
		for (int i = 0; i < tm.n_tensors; i++) {
			struct dds_proto_tensor *t = &tm.t[i];
			*t = (struct dds_proto_tensor){.value_id = rand() % 300, .dtype = DDS_DTYPE_F32,
						       .ndim = 1 + rand() % 4};
			for (int k = 0; k < t->ndim; k++)
				t->dim[k] = 1 + rand() % 6;
			uint32_t e = 4;
			for (int k = 0; k < t->ndim; k++)
				e *= t->dim[k];
			tm.payload_len += e;
		}
		size_t mtu = trial % 2 ? 1500 : 600 + rand() % 8400;
		unsigned n = dds_proto_frag_count(&tm, mtu);
		size_t chunk = dds_proto_frag_chunk(&tm, mtu);
		struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = 4,
					  .request_id = (uint64_t)rand() << 20, .model_hash = rand()};
		for (unsigned i = 0; i < n; i++) {
			size_t la = dds_proto_encode_frag(&h, &tm, payload, i, mtu, key, a, sizeof a);
			uint32_t off = i * chunk;
			struct craft c = {.type = DDS_MSG_REQUEST, .dev = 4, .req = h.request_id,
					  .model = h.model_hash, .index = i, .count = n,
					  .value = tm.value, .payload_len = tm.payload_len, .off = off,
					  .flen = tm.payload_len - off < chunk ? tm.payload_len - off : chunk,
					  .n = tm.n_tensors, .data = payload + off};
			memcpy(c.t, tm.t, sizeof c.t);
			size_t lb = craft_frag(&c, b);
			ck_assert_uint_eq(la, lb);
			ck_assert(memcmp(a, b, la - 28) == 0); /* all but the trailer: nonces differ */
			ck_assert(tag_ok(a, la, key));
			ck_assert(la <= mtu - 28);
		}
	}
}
END_TEST

/* The split check against a brute force over every partition of a small residual model. */
static const char *resnet_json =
	"{\"format\":\"dds-model/1\",\"name\":\"r\",\"input\":{\"shape\":[4]},\"layers\":["
	"{\"name\":\"fc1\",\"op\":\"linear\",\"inputs\":[\"input\"],\"out_features\":4},"
	"{\"name\":\"a\",\"op\":\"relu\",\"inputs\":[\"fc1\"]},"
	"{\"name\":\"fc2\",\"op\":\"linear\",\"inputs\":[\"a\"],\"out_features\":4},"
	"{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"fc1\",\"fc2\"]},"
	"{\"name\":\"skip\",\"op\":\"linear\",\"inputs\":[\"input\"],\"out_features\":4},"
	"{\"name\":\"both\",\"op\":\"add\",\"inputs\":[\"sum\",\"skip\"]},"
	"{\"name\":\"out\",\"op\":\"linear\",\"inputs\":[\"both\"],\"out_features\":2}"
	"],\"output\":\"out\"}";

START_TEST(split_bruteforce)
{
	struct dds_model *m = NULL;
	struct dds_err err;
	ck_assert_msg(dds_model_load_string(resnet_json, strlen(resnet_json), "r.json", NULL, 1, &m,
					    &err) == 0, "%s", err.msg);
	int L = m->n_layers, V = L + 1;
	static bool valid[1 << 8];
	memset(valid, 0, sizeof valid);
	/* Every head (set of layers on the device) closed under predecessors, output on the node:
	 * its cut is the values of the device side (raw input included) read by a node layer. */
	for (int head = 0; head < 1 << L; head++) {
		bool closed = !(head >> m->output & 1);
		for (int k = 0; k < L && closed; k++)
			for (int j = 0; j < m->layers[k].n_in && (head >> k & 1); j++) {
				int v = m->layers[k].in[j];
				closed = closed && (v == 0 || (head >> (v - 1) & 1));
			}
		if (!closed)
			continue;
		int cut = 0;
		for (int k = 0; k < L; k++)
			for (int j = 0; j < m->layers[k].n_in && !(head >> k & 1); j++) {
				int v = m->layers[k].in[j];
				if (v == 0 || (head >> (v - 1) & 1))
					cut |= 1 << v;
			}
		valid[cut] = true;
	}
	int n_valid = 0;
	for (int s = 1; s < 1 << V; s++) {
		struct dds_proto_tmsg tm = {.value = 1};
		for (int v = 0; v < V; v++) {
			if (!(s >> v & 1))
				continue;
			const struct dds_shape *sh = dds_model_value_shape(m, v);
			struct dds_proto_tensor *t = &tm.t[tm.n_tensors++];
			*t = (struct dds_proto_tensor){v, DDS_DTYPE_F32, sh->ndim, {0}};
			for (int k = 0; k < sh->ndim; k++)
				t->dim[k] = sh->d[k];
		}
		int r = dds_proto_check_split(m, m->hash, &tm);
		expect(r, valid[s] ? DDS_PROTO_OK : DDS_DROP_BAD_SPLIT);
		n_valid += valid[s];
	}
	ck_assert_int_ge(n_valid, 6);

	struct dds_proto_tmsg tm = {.value = 1, .n_tensors = 1};
	tm.t[0] = (struct dds_proto_tensor){0, DDS_DTYPE_F32, 1, {4, 0, 0, 0}};
	expect(dds_proto_check_split(m, m->hash, &tm), DDS_PROTO_OK);
	expect(dds_proto_check_split(m, m->hash ^ 1, &tm), DDS_DROP_UNKNOWN_MODEL);
	tm.t[0].dim[0] = 5; /* wrong shape */
	expect(dds_proto_check_split(m, m->hash, &tm), DDS_DROP_BAD_SPLIT);
	tm.t[0] = (struct dds_proto_tensor){(uint16_t)(V + 1), DDS_DTYPE_F32, 1, {4, 0, 0, 0}};
	expect(dds_proto_check_split(m, m->hash, &tm), DDS_DROP_BAD_SPLIT); /* no such value */
	tm.n_tensors = 2; /* descending order */
	tm.t[0] = (struct dds_proto_tensor){5, DDS_DTYPE_F32, 1, {4, 0, 0, 0}};
	tm.t[1] = (struct dds_proto_tensor){4, DDS_DTYPE_F32, 1, {4, 0, 0, 0}};
	expect(dds_proto_check_split(m, m->hash, &tm), DDS_DROP_BAD_SPLIT);
	dds_model_free(m);
}
END_TEST

/* Keys as text against libsodium's sodium_hex2bin: random keys in both cases, and every
 * one-character corruption and length change is refused. */
START_TEST(key_parse)
{
	uint8_t key[DDS_PROTO_KEY_LEN], want[DDS_PROTO_KEY_LEN];
	char hex[2 * DDS_PROTO_KEY_LEN + 2];

	for (int rep = 0; rep < 64; rep++) {
		randombytes_buf(want, sizeof(want));
		sodium_bin2hex(hex, sizeof(hex), want, sizeof(want));
		for (int i = 0; rep & 1 && hex[i]; i++)
			hex[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
		ck_assert_int_eq(dds_proto_key_parse(hex, strlen(hex), key), 0);
		ck_assert_mem_eq(key, want, sizeof(key));
		ck_assert_int_eq(sodium_hex2bin(key, sizeof(key), hex, strlen(hex), NULL, NULL, NULL), 0);
		ck_assert_mem_eq(key, want, sizeof(key));
		ck_assert_int_eq(dds_proto_key_parse(hex, strlen(hex) - 1, key), -1);
		ck_assert_int_eq(dds_proto_key_parse(hex, strlen(hex) - 2, key), -1);
		hex[2 * DDS_PROTO_KEY_LEN] = '0';
		ck_assert_int_eq(dds_proto_key_parse(hex, 2 * DDS_PROTO_KEY_LEN + 1, key), -1);
		hex[2 * DDS_PROTO_KEY_LEN] = '\0';
		for (const char *bad = "g G/:@`-x "; *bad; bad++) {
			int at = rep % (2 * DDS_PROTO_KEY_LEN);
			char keep = hex[at];

			hex[at] = *bad;
			ck_assert_int_eq(dds_proto_key_parse(hex, strlen(hex), key), -1);
			hex[at] = keep;
		}
	}
	ck_assert_int_eq(dds_proto_key_parse(NULL, 64, key), -1);
}
END_TEST

START_TEST(api_misuse)
{
	struct dds_proto_rx_config cfg = node_cfg();
	struct dds_proto_devtab *t = dds_proto_devtab_new(1);
	uint8_t key[32] = {0};
	ck_assert_ptr_null(dds_proto_devtab_new(0));
	ck_assert_int_eq(dds_proto_devtab_add(t, 5, key), 0);
	ck_assert_int_eq(dds_proto_devtab_add(t, 5, key), 0); /* re-key */
	ck_assert_int_eq(dds_proto_devtab_add(t, 6, key), -1); /* full */
	ck_assert_ptr_nonnull(dds_proto_devtab_key(t, 5));
	ck_assert_ptr_null(dds_proto_devtab_key(t, 6));
	cfg.max_slots = 0;
	ck_assert_ptr_null(dds_proto_rx_new(&cfg, t, NULL));
	cfg = node_cfg();
	cfg.timeout_ns = 0;
	ck_assert_ptr_null(dds_proto_rx_new(&cfg, t, NULL));
	cfg = node_cfg();
	ck_assert_ptr_null(dds_proto_rx_new(&cfg, NULL, NULL));
	struct dds_proto_alloc half = {count_alloc, NULL, NULL};
	ck_assert_ptr_null(dds_proto_rx_new(&cfg, t, &half));
	dds_proto_rx_free(NULL);
	dds_proto_devtab_free(t);
}
END_TEST

START_TEST(every_reason_reached)
{
	for (int r = 0; r < DDS_PROTO_REASON__COUNT; r++)
		ck_assert_msg(seen[r] > 0, "reason %s never reached", dds_proto_reason_name(r));
}
END_TEST

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	sodium_gcm = crypto_aead_aes256gcm_is_available();
	if (!sodium_gcm)
		printf("protocol: no libsodium AES-256-GCM here; the Python-made vectors check the MAC\n");
	struct dds_check_case cases[] = {
		{ .name = "all", .timeout = 60, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(vector_request),
			DDS_CHECK_TEST(vector_singles),
			DDS_CHECK_TEST(mac_vectors),
			DDS_CHECK_TEST(mac_every_length),
			DDS_CHECK_TEST(mac_nonce_counter),
			DDS_CHECK_TEST(mac_key_cache),
			DDS_CHECK_TEST(replay_window),
			DDS_CHECK_TEST(reason_names),
			DDS_CHECK_TEST(parse_reasons),
			DDS_CHECK_TEST(rx_auth),
			DDS_CHECK_TEST(rx_accept_replays),
			DDS_CHECK_TEST(rx_order),
			DDS_CHECK_TEST(rx_limits),
			DDS_CHECK_TEST(rx_conflicts),
			DDS_CHECK_TEST(rx_drain_and_stop_reasons),
			DDS_CHECK_TEST(device_role),
			DDS_CHECK_TEST(encoder_vs_craft),
			DDS_CHECK_TEST(split_bruteforce),
			DDS_CHECK_TEST(key_parse),
			DDS_CHECK_TEST(api_misuse),
			DDS_CHECK_TEST(every_reason_reached)) }, /* last: reads what the others saw */
		{ .name = NULL },
	};

	return dds_check_main("protocol", cases, CK_NOFORK); /* one process, so `seen` adds up */
}
