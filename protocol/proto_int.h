/* proto_int.h: internals of the protocol library: big-endian byte access and shared helpers. */
#ifndef DDS_PROTO_INT_H
#define DDS_PROTO_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dds_proto.h"

/* Header field offsets (docs/protocol.md, "Header"). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 2,
	OFF_TYPE = 3,
	OFF_FLAGS = 4,
	OFF_BODY_LEN = 6,
	OFF_DEVICE = 8,
	OFF_FRAG_INDEX = 12,
	OFF_FRAG_COUNT = 14,
	OFF_REQUEST = 16,
	OFF_MODEL = 24,
};

/* Fixed body sizes of the single-datagram messages (REGISTER_REPLY: without its work list). */
enum {
	BODY_REGISTER = 4,
	BODY_REG_REPLY = 32,
	BODY_PRICE = 8,
	BODY_ERROR = 10,
	BODY_BUSY = 12,
};

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static inline void putf64(uint8_t *p, double d)
{
	uint64_t v;
	memcpy(&v, &d, sizeof v);
	put64(p, v);
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static inline double getf64(const uint8_t *p)
{
	uint64_t v = get64(p);
	double d;
	memcpy(&d, &v, sizeof d);
	return d;
}

/* Bytes of a tensor's data (elements * dtype size); 0 if the descriptor is invalid. */
uint64_t dds_proto_tensor_bytes(const struct dds_proto_tensor *t);

/* Descriptor bytes (fixed part + tensors) of a REQUEST/RESULT body. */
static inline size_t dds_proto_tmsg_hdr_len(const struct dds_proto_tmsg *tm)
{
	return DDS_PROTO_TMSG_LEN + (size_t)tm->n_tensors * DDS_PROTO_TDESC_LEN;
}

/* One device's entry in a devtab: its key and the receive state a receiver keeps for it. */
struct dds_proto_dev {
	uint32_t device_id;
	bool used;
	bool have_round;
	uint8_t key[DDS_PROTO_KEY_LEN];
	struct dds_replay window; /* request ids (REQUEST, REGISTER; at a device: replies) */
	uint64_t last_round;      /* PRICE rounds, at a device */
	uint32_t slots;           /* partial messages held */
	uint64_t bytes;           /* their payload bytes */
};

/* The device's entry, or NULL if unknown. */
struct dds_proto_dev *dds_proto_devtab_find(struct dds_proto_devtab *t, uint32_t device_id);

/* ---- the GMAC primitive: AES-256-GCM with no plaintext, the datagram as AAD. Two
 * implementations behind these four functions; meson builds one: gmac_ipsecmb.c (Intel's
 * intel-ipsec-mb, x86-64, where found) or gmac_openssl.c (OpenSSL's EVP, everywhere). A key
 * belongs to one thread at a time (mac.c keeps them per thread). ---- */

struct gmac_key;

/* An empty key object; NULL when out of memory. */
struct gmac_key *gmac_key_new(void);
/* Prepare k for key (AES key schedule and GHASH key). False when the library fails. */
bool gmac_key_set(struct gmac_key *k, const uint8_t key[DDS_PROTO_KEY_LEN]);
/* tag = AES-256-GCM(k, IV = iv, plaintext = none, AAD = aad[0 .. len)). False on failure.
 * len fits an int (mac.c takes datagrams of at most 1 MiB). */
bool gmac_key_tag(struct gmac_key *k, const uint8_t iv[DDS_PROTO_NONCE_LEN], const uint8_t *aad,
		  size_t len, uint8_t tag[DDS_PROTO_TAG_LEN]);
/* Wipe and free (NULL is accepted). */
void gmac_key_free(struct gmac_key *k);
/* Which implementation this build uses, e.g. "intel-ipsec-mb 1.3.0 (avx512)" or "OpenSSL ...". */
const char *gmac_impl_name(void);

#endif
