/* mac.c: the datagram MAC, AES-256-GMAC (docs/protocol.md, "Authentication"), with per-thread nonces and prepared keys. */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include "proto_int.h"

/* Prepared keys per thread, a direct-mapped cache indexed by a hash of the device id. */
#define MAC_SLOTS 256

/* One prepared key: an AES-256-GCM encryption context holding the key schedule and the GHASH
 * key for `key`; NULL ctx means the slot was never used. */
struct mac_slot {
	EVP_CIPHER_CTX *ctx;
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
		EVP_CIPHER_CTX_free(t->slot[i].ctx); /* NULL-safe; wipes the key schedule */
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

/* A context prepared with key, from the slot of the datagram's device (re-keyed if the slot holds
 * another key); NULL when out of memory (the slot is left empty then). */
static EVP_CIPHER_CTX *mac_ctx(struct mac_thread *t, const uint8_t *dgram, const uint8_t *key)
{
	uint32_t h = get32(dgram + OFF_DEVICE) * 2654435761u;
	struct mac_slot *s = &t->slot[h >> 24 & (MAC_SLOTS - 1)];
	if (s->ctx && memcmp(s->key, key, DDS_PROTO_KEY_LEN) == 0) /* keys are not secret from their own thread */
		return s->ctx;
	if (!s->ctx)
		s->ctx = EVP_CIPHER_CTX_new();
	if (!s->ctx || EVP_EncryptInit_ex(s->ctx, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
		EVP_CIPHER_CTX_free(s->ctx);
		s->ctx = NULL;
		return NULL;
	}
	memcpy(s->key, key, DDS_PROTO_KEY_LEN);
	return s->ctx;
}

/* tag = GMAC(IV = the nonce at dgram + aad_len - 12, AAD = dgram[0 .. aad_len)). The _ex2 init
 * and the tag read as a provider parameter skip the legacy ctrl layer's per-call parameter
 * lookups (about 30 ns of a 1,400-byte fragment's 300). */
static bool mac_tag(EVP_CIPHER_CTX *c, const uint8_t *dgram, size_t aad_len,
		    uint8_t tag[DDS_PROTO_TAG_LEN])
{
	int n;
	uint8_t none[16];
	OSSL_PARAM get[2] = {
		OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, DDS_PROTO_TAG_LEN),
		OSSL_PARAM_construct_end()};
	return EVP_EncryptInit_ex2(c, NULL, NULL, dgram + aad_len - DDS_PROTO_NONCE_LEN, NULL) == 1 &&
	       EVP_EncryptUpdate(c, NULL, &n, dgram, (int)aad_len) == 1 &&
	       EVP_EncryptFinal_ex(c, none, &n) == 1 && EVP_CIPHER_CTX_get_params(c, get) == 1;
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

/* Datagrams are at most 64 KiB; the bound keeps the length an int for EVP. */
static bool mac_len_ok(size_t len)
{
	return len >= DDS_PROTO_HDR_LEN + DDS_PROTO_MAC_LEN && len <= (1u << 20);
}

bool dds_proto_mac_sign(uint8_t *dgram, size_t len, const uint8_t key[DDS_PROTO_KEY_LEN])
{
	struct mac_thread *t = mac_len_ok(len) ? mac_thread() : NULL;
	EVP_CIPHER_CTX *c = t ? mac_ctx(t, dgram, key) : NULL;
	size_t aad = len - DDS_PROTO_TAG_LEN;
	return c && mac_next_nonce(t, dgram + aad - DDS_PROTO_NONCE_LEN) &&
	       mac_tag(c, dgram, aad, dgram + aad);
}

bool dds_proto_mac_verify(const uint8_t *dgram, size_t len, const uint8_t key[DDS_PROTO_KEY_LEN])
{
	struct mac_thread *t = mac_len_ok(len) ? mac_thread() : NULL;
	EVP_CIPHER_CTX *c = t ? mac_ctx(t, dgram, key) : NULL;
	size_t aad = len - DDS_PROTO_TAG_LEN;
	uint8_t tag[DDS_PROTO_TAG_LEN];
	return c && mac_tag(c, dgram, aad, tag) &&
	       CRYPTO_memcmp(tag, dgram + aad, DDS_PROTO_TAG_LEN) == 0;
}
