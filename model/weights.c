/* weights.c: the .ddsw weights file (docs/model-format.md) and the seeded initialisation. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

static const char magic[8] = {'D', 'D', 'S', 'W', 'G', 'T', '0', '1'};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static float unit(uint64_t *s)
{
	return (float)((double)(splitmix64(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static size_t fan_in(const struct dds_param *p)
{
	return p->shape.ndim >= 2 ? p->count / (size_t)p->shape.d[0] : p->count;
}

/* The documented initialisation (docs/model-format.md) of one parameter of an `op` layer. */
static void seed_param(enum dds_op op, struct dds_param *p, uint64_t s)
{
	const char *n = p->name;
	int scale = !strcmp(n, "bn_weight") ||
		    (!strcmp(n, "weight") && (op == DDS_OP_BATCHNORM || op == DDS_OP_LAYERNORM));
	int var = !strcmp(n, "var") || !strcmp(n, "bn_var");
	int small = op == DDS_OP_CLS_TOKEN || op == DDS_OP_POS_EMBED;
	float w_scale = 1.0f / sqrtf((float)fan_in(p));

	for (size_t i = 0; i < p->count; i++) {
		float u = unit(&s);
		if (var)
			p->data[i] = 1.0f + 0.5f * fabsf(u);
		else if (scale)
			p->data[i] = 1.0f + 0.1f * u;
		else if (small)
			p->data[i] = 0.02f * u;
		else if (ends_with(n, "weight"))
			p->data[i] = u * w_scale;
		else
			p->data[i] = 0.1f * u; /* biases and means */
	}
}

void dds_weights_seed(struct dds_model *m, uint64_t seed)
{
	uint64_t k = 0;
	for (int i = 0; i < m->n_layers; i++)
		for (int p = 0; p < m->layers[i].n_params; p++, k++)
			seed_param(m->layers[i].op, &m->layers[i].params[p], seed + k);
}

static int read_u32(FILE *f, uint32_t *v)
{
	uint8_t b[4];
	if (fread(b, 1, 4, f) != 4)
		return -1;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

static int write_u32(FILE *f, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

/* Floats are little-endian in the file: swap in place on a big-endian host (twice restores). */
static void swap_le(float *v, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (size_t i = 0; i < n; i++) {
		uint32_t b;
		memcpy(&b, &v[i], 4);
		b = __builtin_bswap32(b);
		memcpy(&v[i], &b, 4);
	}
#else
	(void)v;
	(void)n;
#endif
}

/* Find "<layer>.<param>"; NULL if no such parameter. */
static struct dds_param *find_param(struct dds_model *m, const char *full)
{
	for (int i = 0; i < m->n_layers; i++) {
		struct dds_layer *l = &m->layers[i];
		size_t n = strlen(l->name);
		if (strncmp(full, l->name, n) || full[n] != '.')
			continue;
		for (int p = 0; p < l->n_params; p++)
			if (!strcmp(full + n + 1, l->params[p].name))
				return &l->params[p];
	}
	return NULL;
}

/* Read one tensor entry; `seen` marks parameters already read (indexed by arena offset). */
static int read_entry(struct dds_model *m, FILE *f, const char *path, uint32_t idx, uint8_t *seen,
		      struct dds_err *err)
{
	uint32_t len, ndim, d;
	char name[2 * DDS_NAME_MAX];
	if (read_u32(f, &len))
		return dds_errf(err, "%s: truncated at tensor #%u (name length)", path, idx);
	if (len == 0 || len >= sizeof(name))
		return dds_errf(err, "%s: tensor #%u: bad name length %u", path, idx, len);
	if (fread(name, 1, len, f) != len)
		return dds_errf(err, "%s: truncated at tensor #%u (name)", path, idx);
	name[len] = 0;
	struct dds_param *p = find_param(m, name);
	if (!p)
		return dds_errf(err, "%s: tensor '%s' is not a parameter of model %s", path, name,
				m->name);
	size_t slot = (size_t)(p->data - m->weights);
	if (seen[slot])
		return dds_errf(err, "%s: tensor '%s' appears twice", path, name);
	seen[slot] = 1;
	if (read_u32(f, &ndim))
		return dds_errf(err, "%s: tensor '%s': truncated (ndim)", path, name);
	int ok = (int)ndim == p->shape.ndim;
	for (uint32_t i = 0; i < ndim && i < DDS_MAX_DIMS; i++) {
		if (read_u32(f, &d))
			return dds_errf(err, "%s: tensor '%s': truncated (dims)", path, name);
		ok = ok && (int)d == p->shape.d[i];
	}
	if (!ok)
		return dds_errf(err, "%s: tensor '%s': shape differs from the graph's", path, name);
	size_t got = fread(p->data, sizeof(float), p->count, f);
	if (got != p->count)
		return dds_errf(err, "%s: tensor '%s': short file (%zu of %zu floats)", path, name, got,
				p->count);
	swap_le(p->data, p->count);
	return 0;
}

static int read_all(struct dds_model *m, FILE *f, const char *path, uint8_t *seen,
		    struct dds_err *err)
{
	char mg[8];
	uint32_t count;
	if (fread(mg, 1, 8, f) != 8 || memcmp(mg, magic, 8))
		return dds_errf(err, "%s: not a weights file (bad magic)", path);
	if (read_u32(f, &count))
		return dds_errf(err, "%s: truncated header", path);
	for (uint32_t i = 0; i < count; i++)
		if (read_entry(m, f, path, i, seen, err))
			return -1;
	if (fgetc(f) != EOF)
		return dds_errf(err, "%s: trailing bytes after %u tensors", path, count);
	for (int i = 0; i < m->n_layers; i++)
		for (int p = 0; p < m->layers[i].n_params; p++)
			if (!seen[m->layers[i].params[p].data - m->weights])
				return dds_errf(err, "%s: layer '%s': missing tensor '%s.%s'", path,
						m->layers[i].name, m->layers[i].name,
						m->layers[i].params[p].name);
	return 0;
}

int dds_weights_read(struct dds_model *m, const char *path, struct dds_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return dds_errf(err, "%s: cannot open weights file: %s", path, strerror(errno));
	uint8_t *seen = calloc(m->n_weights + 1, 1);
	int rc = seen ? read_all(m, f, path, seen, err) : dds_errf(err, "%s: out of memory", path);
	free(seen);
	fclose(f);
	return rc;
}

int dds_model_save_weights(const struct dds_model *m, const char *path, struct dds_err *err)
{
	if (!m->weights)
		return dds_errf(err, "%s: model %s was loaded without weights", path, m->name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return dds_errf(err, "%s: cannot create: %s", path, strerror(errno));
	uint32_t count = 0;
	for (int i = 0; i < m->n_layers; i++)
		count += (uint32_t)m->layers[i].n_params;
	int bad = fwrite(magic, 1, 8, f) != 8 || write_u32(f, count);
	for (int i = 0; !bad && i < m->n_layers; i++) {
		const struct dds_layer *l = &m->layers[i];
		for (int p = 0; !bad && p < l->n_params; p++) {
			const struct dds_param *q = &l->params[p];
			char name[2 * DDS_NAME_MAX];
			int n = snprintf(name, sizeof(name), "%s.%s", l->name, q->name);
			bad = write_u32(f, (uint32_t)n) || fwrite(name, 1, (size_t)n, f) != (size_t)n ||
			      write_u32(f, (uint32_t)q->shape.ndim);
			for (int d = 0; !bad && d < q->shape.ndim; d++)
				bad = write_u32(f, (uint32_t)q->shape.d[d]);
			swap_le(q->data, q->count);
			bad = bad || fwrite(q->data, sizeof(float), q->count, f) != q->count;
			swap_le(q->data, q->count);
		}
	}
	if (fclose(f) || bad)
		return dds_errf(err, "%s: write error", path);
	return 0;
}
