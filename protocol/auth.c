/* auth.c: authentication state: the replay window, the device key table and keys as text (the MAC: mac.c). */
#include <openssl/crypto.h>
#include <stdlib.h>

#include "proto_int.h"

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int dds_proto_key_parse(const char *hex, size_t len, uint8_t key[DDS_PROTO_KEY_LEN])
{
	if (!hex || len != 2 * DDS_PROTO_KEY_LEN)
		return -1;
	for (int i = 0; i < DDS_PROTO_KEY_LEN; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool dds_replay_check(const struct dds_replay *w, uint64_t id)
{
	if (id > w->top)
		return true;
	uint64_t back = w->top - id;
	return back < 64 && !(w->bitmap >> back & 1);
}

void dds_replay_commit(struct dds_replay *w, uint64_t id)
{
	if (id > w->top) {
		uint64_t shift = id - w->top;
		w->bitmap = shift >= 64 ? 0 : w->bitmap << shift;
		w->top = id;
	}
	if (w->top - id < 64) /* an id below the window (accept_replays) leaves no mark */
		w->bitmap |= (uint64_t)1 << (w->top - id);
}

/* Open addressing with linear probing over a power-of-two array at most half full. */
struct dds_proto_devtab {
	uint32_t capacity, count, mask;
	struct dds_proto_dev *e;
};

struct dds_proto_devtab *dds_proto_devtab_new(uint32_t capacity)
{
	if (capacity == 0 || capacity > (1u << 30))
		return NULL;
	uint32_t size = 2;
	while (size < 2 * capacity)
		size *= 2;
	struct dds_proto_devtab *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->e = calloc(size, sizeof *t->e);
	if (!t->e) {
		free(t);
		return NULL;
	}
	t->capacity = capacity;
	t->mask = size - 1;
	return t;
}

void dds_proto_devtab_free(struct dds_proto_devtab *t)
{
	if (!t)
		return;
	OPENSSL_cleanse(t->e, (size_t)(t->mask + 1) * sizeof *t->e);
	free(t->e);
	free(t);
}

/* The entry holding device_id, or the free entry where it would go. */
static struct dds_proto_dev *probe(const struct dds_proto_devtab *t, uint32_t device_id)
{
	uint32_t i = (device_id * 2654435761u) & t->mask;
	while (t->e[i].used && t->e[i].device_id != device_id)
		i = (i + 1) & t->mask;
	return &t->e[i];
}

struct dds_proto_dev *dds_proto_devtab_find(struct dds_proto_devtab *t, uint32_t device_id)
{
	struct dds_proto_dev *d = probe(t, device_id);
	return d->used ? d : NULL;
}

int dds_proto_devtab_add(struct dds_proto_devtab *t, uint32_t device_id,
			 const uint8_t key[DDS_PROTO_KEY_LEN])
{
	struct dds_proto_dev *d = probe(t, device_id);
	if (!d->used) {
		if (t->count == t->capacity)
			return -1;
		t->count++;
		d->used = true;
		d->device_id = device_id;
	}
	memcpy(d->key, key, DDS_PROTO_KEY_LEN);
	return 0;
}

const uint8_t *dds_proto_devtab_key(const struct dds_proto_devtab *t, uint32_t device_id)
{
	const struct dds_proto_dev *d = probe(t, device_id);
	return d->used ? d->key : NULL;
}
