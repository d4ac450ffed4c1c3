/* mac.c: the datagram MAC, AES-256-GMAC (docs/protocol.md, "Authentication"), with per-thread nonces and prepared keys. */
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include "proto_int.h"

/* Prepared keys per thread, a direct-mapped cache indexed by a hash of the device id. */
#define MAC_SLOTS 256

/* One prepared key (gmac_key_*, proto_int.h) for `key`; NULL k means the slot was never used. */
struct mac_slot {
	struct gmac_key *k;
	uint8_t key[DDS_PROTO_KEY_LEN];
};

/* Everything the MAC keeps per thread. Nonces are base + counter (96-bit big-endian sum), the
 * base drawn from the kernel once per thread and again in a forked child. */
struct mac_thread {
	bool seeded;
	uint8_t base[DDS_PROTO_NONCE_LEN];
	uint64_t counter;
	struct mac_slot slot[MAC_SLOTS];
};

static __thread struct mac_thread *mac_tls;
static pthread_key_t mac_key;   /* its destructor frees a thread's state when the thread exits */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static bool mac_key_ok;

/* Frees a thread's state, wiping its copies of the keys. */
static void mac_thread_free(void *p)
{
	struct mac_thread *t = p;
	for (int i = 0; i < MAC_SLOTS; i++)
		gmac_key_free(t->slot[i].k); /* NULL-safe; wipes the key schedule */
	OPENSSL_cleanse(t, sizeof *t);
	free(t);
	if (mac_tls == t)
		mac_tls = NULL;
}

/* In a forked child the parent's counter would repeat the parent's nonces: draw a new base. */
static void mac_after_fork(void)
{
	if (mac_tls)
		mac_tls->seeded = false;
}

static void mac_init_once(void)
{
	mac_key_ok = pthread_key_create(&mac_key, mac_thread_free) == 0 &&
		     pthread_atfork(NULL, NULL, mac_after_fork) == 0;
}

/* The calling thread's state, created on first use; NULL when out of memory. */
static struct mac_thread *mac_thread(void)
{
	if (mac_tls)
		return mac_tls;
	if (pthread_once(&mac_once, mac_init_once) != 0 || !mac_key_ok)
		return NULL;
	struct mac_thread *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	if (pthread_setspecific(mac_key, t) != 0) {
		free(t);
		return NULL;
	}
	mac_tls = t;
	return t;
}

/* The key prepared for key, from the slot of the datagram's device (prepared again if the slot
 * holds another key); NULL when out of memory (the slot is left empty then). */
static struct gmac_key *mac_prepared(struct mac_thread *t, const uint8_t *dgram, const uint8_t *key)
{
	uint32_t h = get32(dgram + OFF_DEVICE) * 2654435761u;
	struct mac_slot *s = &t->slot[h >> 24 & (MAC_SLOTS - 1)];
	/* memcmp, not a constant-time compare: both keys are this thread's own copies */
	if (s->k && memcmp(s->key, key, DDS_PROTO_KEY_LEN) == 0)
		return s->k;
	if (!s->k)
		s->k = gmac_key_new();
	if (!s->k || !gmac_key_set(s->k, key)) {
		gmac_key_free(s->k);
		s->k = NULL;
		return NULL;
	}
	memcpy(s->key, key, DDS_PROTO_KEY_LEN);
	return s->k;
}

/* Writes the thread's next nonce: base + counter, a 96-bit big-endian sum. */
static bool mac_next_nonce(struct mac_thread *t, uint8_t nonce[DDS_PROTO_NONCE_LEN])
{
	if (!t->seeded) {
		if (getrandom(t->base, sizeof t->base, 0) != (ssize_t)sizeof t->base)
			return false;
		t->counter = 0;
		t->seeded = true;
	}
	uint64_t lo = get64(t->base + 4), sum = lo + t->counter++;
	put32(nonce, get32(t->base) + (sum < lo));
	put64(nonce + 4, sum);
	return true;
}

/* Datagrams are at most 64 KiB; the bound keeps the length an int for OpenSSL's EVP. */
static bool mac_len_ok(size_t len)
{
	return len >= DDS_PROTO_HDR_LEN + DDS_PROTO_MAC_LEN && len <= (1u << 20);
}

bool dds_proto_mac_sign(uint8_t *dgram, size_t len, const uint8_t key[DDS_PROTO_KEY_LEN])
{
	struct mac_thread *t = mac_len_ok(len) ? mac_thread() : NULL;
	struct gmac_key *k = t ? mac_prepared(t, dgram, key) : NULL;
	size_t aad = len - DDS_PROTO_TAG_LEN;
	return k && mac_next_nonce(t, dgram + aad - DDS_PROTO_NONCE_LEN) &&
	       gmac_key_tag(k, dgram + aad - DDS_PROTO_NONCE_LEN, dgram, aad, dgram + aad);
}

bool dds_proto_mac_verify(const uint8_t *dgram, size_t len, const uint8_t key[DDS_PROTO_KEY_LEN])
{
	struct mac_thread *t = mac_len_ok(len) ? mac_thread() : NULL;
	struct gmac_key *k = t ? mac_prepared(t, dgram, key) : NULL;
	size_t aad = len - DDS_PROTO_TAG_LEN;
	uint8_t tag[DDS_PROTO_TAG_LEN];
	return k && gmac_key_tag(k, dgram + aad - DDS_PROTO_NONCE_LEN, dgram, aad, tag) &&
	       CRYPTO_memcmp(tag, dgram + aad, DDS_PROTO_TAG_LEN) == 0;
}

const char *dds_proto_mac_impl(void)
{
	return gmac_impl_name();
}
