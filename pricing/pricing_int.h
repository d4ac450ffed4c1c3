/* pricing_int.h: internals of pricing/ shared by its files and its unit tests (not installed). */
#ifndef DDS_PRICING_INT_H
#define DDS_PRICING_INT_H

#include "dds_pricing.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as in iSCSI and ext4: start with
 * crc = 0; the CRC of "123456789" is 0xE3069283. */
uint32_t dds_crc32c(uint32_t crc, const void *buf, size_t len);

/* Byte layout of a record (docs/pricing.md), all little-endian. */
enum {
	DDS_LREC_OFF_MAGIC = 0,   /* u32 */
	DDS_LREC_OFF_VERSION = 4, /* u16 */
	DDS_LREC_OFF_LENGTH = 6,  /* u16: DDS_LEDGER_REC_SIZE */
	DDS_LREC_OFF_DEVICE = 8,  /* u32 */
	DDS_LREC_OFF_FLAGS = 12,  /* u32: 0 */
	DDS_LREC_OFF_ROUND = 16,  /* u64 */
	DDS_LREC_OFF_BUDGET = 24, /* f64 */
	DDS_LREC_OFF_ALLOC = 32,  /* f64 */
	DDS_LREC_OFF_CHARGE = 40, /* f64 */
	DDS_LREC_OFF_PRICE = 48,  /* f64 */
	DDS_LREC_OFF_RESERVED = 56, /* u32: 0 */
	DDS_LREC_OFF_CRC = 60,    /* u32: CRC-32C of bytes [0, 60) */
};

/* Encode rec into 64 bytes. */
void dds_ledger_encode(const struct dds_ledger_rec *rec, uint8_t out[DDS_LEDGER_REC_SIZE]);

/* Decode 64 bytes; returns NULL and fills rec when valid, else a static reason string. */
const char *dds_ledger_decode(const uint8_t in[DDS_LEDGER_REC_SIZE], struct dds_ledger_rec *rec);

/* snprintf into a caller's buffer, which may be NULL. */
void dds_pricing_fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
