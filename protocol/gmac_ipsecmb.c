/* gmac_ipsecmb.c: the GMAC primitive on Intel's intel-ipsec-mb (x86-64): about 4x OpenSSL 3.0's EVP per 1,400-byte datagram, the receive path's largest cost. */
#define LINUX 1 /* as the library was built: its header aligns the key data (64 bytes) only then */
#include <intel-ipsec-mb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto_int.h"

/* The AES-256 round keys and the GHASH key powers for the CPU's code path (about 1 KiB,
 * 64-byte aligned as the library requires). */
struct gmac_key {
	struct gcm_key_data kd;
};

/* One manager for the process, made once: the direct GCM/GMAC calls only read its function
 * table (the CPU's best path: SSE, AVX, AVX2 or AVX-512 with VAES), so threads share it. NULL
 * when it cannot be made; every key then fails. */
static IMB_MGR *gmac_mgr;
static pthread_once_t gmac_once = PTHREAD_ONCE_INIT;
static char gmac_name[64] = "intel-ipsec-mb " IMB_VERSION_STR " (unavailable)";

static void gmac_init_once(void)
{
	static const char *const arch[IMB_ARCH_NUM] = {
		[IMB_ARCH_NOAESNI] = "no AES-NI", [IMB_ARCH_SSE] = "sse", [IMB_ARCH_AVX] = "avx",
		[IMB_ARCH_AVX2] = "avx2", [IMB_ARCH_AVX512] = "avx512"};
	IMB_MGR *m = alloc_mb_mgr(0);
	IMB_ARCH a = IMB_ARCH_NONE;

	if (!m)
		return;
	init_mb_mgr_auto(m, &a);
	if (imb_get_errno(m) || a <= IMB_ARCH_NONE || a >= IMB_ARCH_NUM) {
		free_mb_mgr(m);
		return;
	}
	snprintf(gmac_name, sizeof(gmac_name), "intel-ipsec-mb %s (%s)", imb_get_version_str(),
		 arch[a]);
	gmac_mgr = m;
}

static IMB_MGR *gmac_manager(void)
{
	return pthread_once(&gmac_once, gmac_init_once) == 0 ? gmac_mgr : NULL;
}

struct gmac_key *gmac_key_new(void)
{
	/* aligned_alloc wants a size that is a multiple of the alignment */
	return gmac_manager() ? aligned_alloc(64, (sizeof(struct gmac_key) + 63) & ~(size_t)63) : NULL;
}

bool gmac_key_set(struct gmac_key *k, const uint8_t key[DDS_PROTO_KEY_LEN])
{
	IMB_AES256_GCM_PRE(gmac_mgr, key, &k->kd);
	return true;
}

bool gmac_key_tag(struct gmac_key *k, const uint8_t iv[DDS_PROTO_NONCE_LEN], const uint8_t *aad,
		  size_t len, uint8_t tag[DDS_PROTO_TAG_LEN])
{
	struct gcm_context_data ctx; /* the running GHASH of public bytes: not wiped, as EVP's */

	IMB_AES256_GMAC_INIT(gmac_mgr, &k->kd, &ctx, iv, DDS_PROTO_NONCE_LEN);
	IMB_AES256_GMAC_UPDATE(gmac_mgr, &k->kd, &ctx, aad, len);
	IMB_AES256_GMAC_FINALIZE(gmac_mgr, &k->kd, &ctx, tag, DDS_PROTO_TAG_LEN);
	return true;
}

void gmac_key_free(struct gmac_key *k)
{
	if (!k)
		return;
	explicit_bzero(k, sizeof(*k));
	free(k);
}

const char *gmac_impl_name(void)
{
	gmac_manager();
	return gmac_name;
}
