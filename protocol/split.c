/* split.c: is a request's list of tensors a valid cut of its model graph (node side check)? */
#include <stdlib.h>

#include "dds_model.h"
#include "proto_int.h"

/* Tensors in ascending value order, float32, with the model's shapes. */
static bool tensors_match(const struct dds_model *m, const struct dds_proto_tmsg *tm)
{
	for (unsigned i = 0; i < tm->n_tensors; i++) {
		const struct dds_proto_tensor *t = &tm->t[i];
		if (t->value_id > m->n_layers || (i > 0 && t->value_id <= tm->t[i - 1].value_id) ||
		    t->dtype != DDS_DTYPE_F32)
			return false;
		const struct dds_shape *s = dds_model_value_shape(m, t->value_id);
		if (s->ndim != t->ndim)
			return false;
		for (int k = 0; k < s->ndim; k++)
			if ((uint32_t)s->d[k] != t->dim[k])
				return false;
	}
	return true;
}

/* The cut of a partition: walking back from the output and stopping at sent values marks the
 * layers the node must run (the tail); walking back from the sent values marks the layers the
 * device ran (the head). Valid iff the two do not meet, the raw input is sent iff the tail reads
 * it, every sent value is read by the tail, and the output is not itself sent. */
static bool cut_valid(const struct dds_model *m, const uint8_t *sent, uint8_t *tail, uint8_t *head)
{
	int out = m->output + 1;
	if (sent[out])
		return false;
	tail[out] = 1;
	for (int v = m->n_layers; v >= 1; v--) {
		const struct dds_layer *l = &m->layers[v - 1];
		bool runs_on_node = tail[v] && !sent[v];
		if (runs_on_node && head[v])
			return false;
		for (int j = 0; j < l->n_in; j++) {
			if (runs_on_node)
				tail[l->in[j]] = 1;
			if (sent[v] || head[v])
				head[l->in[j]] = 1;
		}
	}
	for (int v = 0; v <= m->n_layers; v++)
		if (tail[v] != sent[v] && (v == 0 || sent[v]))
			return false;
	return true;
}

int dds_proto_check_split(const struct dds_model *m, uint64_t model_hash,
			  const struct dds_proto_tmsg *tm)
{
	if (model_hash != m->hash)
		return DDS_DROP_UNKNOWN_MODEL;
	if (tm->n_tensors < 1 || tm->n_tensors > DDS_PROTO_MAX_TENSORS || !tensors_match(m, tm))
		return DDS_DROP_BAD_SPLIT;
	size_t n = (size_t)m->n_layers + 1;
	uint8_t *flags = calloc(3, n);
	if (!flags)
		return DDS_DROP_ALLOC_FAILED;
	for (unsigned i = 0; i < tm->n_tensors; i++)
		flags[tm->t[i].value_id] = 1;
	bool ok = cut_valid(m, flags, flags + n, flags + 2 * n);
	free(flags);
	return ok ? DDS_PROTO_OK : DDS_DROP_BAD_SPLIT;
}
