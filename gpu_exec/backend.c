/* backend.c: the one wrapper around every backend: choice by name, argument checks, tails, plans. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_int.h"
#include "dds_gpu.h"

int dds_backend_errf(struct dds_err *err, int status, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return status;
}

const char *dds_backend_status_name(int status)
{
	switch (status) {
	case DDS_BACKEND_OK:
		return "ok";
	case DDS_BACKEND_EINVAL:
		return "einval";
	case DDS_BACKEND_ENOMEM:
		return "enomem";
	case DDS_BACKEND_EUNSUPPORTED:
		return "eunsupported";
	case DDS_BACKEND_EDEVICE:
		return "edevice";
	default:
		return "unknown";
	}
}

static void backend_log(const struct dds_backend_opts *o, const char *line)
{
	if (o->log)
		o->log(o->log_arg, line);
	else
		fprintf(stderr, "%s\n", line);
}

/* "auto": CUDA if a GPU is usable and the CUDA backend starts, else the CPU engine. Logs exactly
 * one line saying which and, on fallback, why. */
static int backend_auto_init(struct dds_backend *b, const struct dds_backend_opts *o,
			     struct dds_err *err)
{
	char what[256], line[600];
	struct dds_err cerr = {{0}};
	int rc;

	if (dds_gpu_probe(what, sizeof(what)) > 0) {
		rc = dds_backend_cuda_init(b, o, &cerr);
		if (rc == DDS_BACKEND_OK) {
			snprintf(line, sizeof(line), "backend: cuda (%s)", what);
			backend_log(o, line);
			return rc;
		}
		snprintf(line, sizeof(line), "backend: cpu engine, the CUDA backend did not start: %s",
			 cerr.msg);
	} else {
		snprintf(line, sizeof(line), "backend: cpu engine, %s", what);
	}
	rc = dds_backend_cpu_init(b, o, err);
	if (rc == DDS_BACKEND_OK)
		backend_log(o, line);
	return rc;
}

/* Explicit "cuda": fails (no fallback) when no GPU is usable. */
static int backend_cuda_checked_init(struct dds_backend *b, const struct dds_backend_opts *o,
				     struct dds_err *err)
{
	char what[256];

	if (dds_gpu_probe(what, sizeof(what)) <= 0)
		return dds_backend_errf(err, DDS_BACKEND_EUNSUPPORTED, "backend 'cuda': %s", what);
	return dds_backend_cuda_init(b, o, err);
}

typedef int (*backend_init_fn)(struct dds_backend *, const struct dds_backend_opts *,
			       struct dds_err *);

/* The constructor of a backend name, or NULL. */
static backend_init_fn backend_lookup(const char *name)
{
	static const struct {
		const char *name;
		backend_init_fn init;
	} table[] = {
		{"auto", backend_auto_init},
		{"cpu", dds_backend_cpu_init},
		{"cuda", backend_cuda_checked_init},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(name, table[i].name) == 0)
			return table[i].init;
	return NULL;
}

struct dds_backend *dds_backend_create(const struct dds_backend_opts *o, int *status,
				       struct dds_err *err)
{
	const char *name = o && o->name ? o->name : "auto";
	backend_init_fn init = backend_lookup(name);
	struct dds_backend *b = NULL;
	int rc;

	if (!o || o->cpu_threads < 0 || o->gpu_index < 0)
		rc = dds_backend_errf(err, DDS_BACKEND_EINVAL,
				      "backend: no options, or cpu_threads/gpu_index < 0");
	else if (!init)
		rc = dds_backend_errf(err, DDS_BACKEND_EINVAL,
				      "backend '%s': unknown (expected auto, cpu or cuda)", name);
	else if (!(b = calloc(1, sizeof(*b))))
		rc = dds_backend_errf(err, DDS_BACKEND_ENOMEM, "backend: out of memory");
	else
		rc = init(b, o, err);
	if (rc != DDS_BACKEND_OK) {
		free(b);
		b = NULL;
	}
	if (status)
		*status = rc;
	return b;
}

void dds_backend_free(struct dds_backend *b)
{
	if (!b)
		return;
	if (b->iface.free)
		b->iface.free(b);
	free(b);
}

const char *dds_backend_name(const struct dds_backend *b)
{
	return b ? b->iface.name(b) : "none";
}

bool dds_backend_supports_layer(const struct dds_backend *b, const struct dds_model *m, int li)
{
	if (!b || !m || li < 0 || li >= m->n_layers)
		return false;
	return !b->iface.supports_op || b->iface.supports_op(b, m, li);
}

int dds_plan_tail_mask(const struct dds_model *m, const int *values, int n_values, uint8_t *mask,
		       struct dds_err *err)
{
	return dds_model_tail_mask(m, values, n_values, mask, err) ? DDS_BACKEND_EINVAL
								    : DDS_BACKEND_OK;
}

/* A tail mask must contain the output layer and leave a head closed under predecessors. */
static int plan_check_tail(const struct dds_model *m, const uint8_t *tail, struct dds_err *err)
{
	uint8_t *head = malloc((size_t)m->n_layers);
	int rc = DDS_BACKEND_OK;

	if (!head)
		return dds_backend_errf(err, DDS_BACKEND_ENOMEM, "%s: plan: out of memory", m->name);
	for (int k = 0; k < m->n_layers; k++)
		head[k] = !tail[k];
	if (!tail[m->output])
		rc = dds_backend_errf(err, DDS_BACKEND_EINVAL,
				      "%s: plan: the tail does not contain the output layer '%s'",
				      m->name, m->layers[m->output].name);
	else if (dds_model_check_head(m, head, err))
		rc = DDS_BACKEND_EINVAL;
	free(head);
	return rc;
}

/* Output values: in range, no duplicates; is_out[v] = 1 for each. */
static int plan_check_outputs(const struct dds_model *m, const int *out, int n_out,
			      uint8_t *is_out, struct dds_err *err)
{
	if (n_out < 1 || !out)
		return dds_backend_errf(err, DDS_BACKEND_EINVAL, "%s: plan: no output values",
					m->name);
	for (int i = 0; i < n_out; i++) {
		if (out[i] < 0 || out[i] > m->n_layers || is_out[out[i]])
			return dds_backend_errf(err, DDS_BACKEND_EINVAL,
						"%s: plan: output value %d is %s", m->name, out[i],
						out[i] < 0 || out[i] > m->n_layers ? "out of range"
										   : "given twice");
		is_out[out[i]] = 1;
	}
	return DDS_BACKEND_OK;
}

/* The ids v (ascending) with flag[v] set, their sizes and total: a plan's inputs or outputs. */
static int plan_list(const struct dds_model *m, const uint8_t *flag, int *n, int **val,
		     size_t **numel, size_t *floats)
{
	*val = calloc((size_t)m->n_layers + 1, sizeof(int));
	*numel = calloc((size_t)m->n_layers + 1, sizeof(size_t));
	if (!*val || !*numel)
		return -1;
	for (int v = 0; v <= m->n_layers; v++) {
		if (!flag[v])
			continue;
		(*val)[*n] = v;
		(*numel)[*n] = dds_shape_numel(dds_model_value_shape(m, v));
		*floats += (*numel)[(*n)++];
	}
	return 0;
}

/* Fill the plan's public fields from the run mask and the output values: the mask copy, the
 * inputs (read by a run layer or output, and computed by none) and the outputs. */
static int plan_describe(struct dds_plan *p, const uint8_t *run, const int *out, int n_out,
			 struct dds_err *err)
{
	const struct dds_model *m = p->m;
	int n = m->n_layers, rc;
	uint8_t *is_out = calloc((size_t)n + 1, 1), *reads = calloc((size_t)n + 1, 1);

	p->mask = malloc((size_t)n);
	if (!is_out || !reads || !p->mask) {
		rc = dds_backend_errf(err, DDS_BACKEND_ENOMEM, "%s: plan: out of memory", m->name);
		goto out;
	}
	for (int k = 0; k < n; k++)
		p->mask[k] = run[k] != 0;
	rc = plan_check_outputs(m, out, n_out, is_out, err);
	if (rc != DDS_BACKEND_OK)
		goto out;
	dds_model_mask_inputs(m, p->mask, reads);
	for (int v = 0; v <= n; v++) /* an output no run layer computes is copied through */
		reads[v] |= is_out[v] && (v == 0 || !p->mask[v - 1]);
	if (plan_list(m, reads, &p->n_in, &p->in_val, &p->in_numel, &p->in_floats) ||
	    plan_list(m, is_out, &p->n_out, &p->out_val, &p->out_numel, &p->out_floats))
		rc = dds_backend_errf(err, DDS_BACKEND_ENOMEM, "%s: plan: out of memory", m->name);
out:
	free(is_out);
	free(reads);
	return rc;
}

/* The first run layer the backend cannot run, or -1. */
static int plan_unsupported(const struct dds_plan *p)
{
	for (int k = 0; k < p->m->n_layers; k++)
		if (p->mask[k] && !dds_backend_supports_layer(p->b, p->m, k))
			return k;
	return -1;
}

/* The one constructor behind both public ones: arguments checked, the tail checked (tail: the
 * outputs are the model output; else out/n_out), layout, support, then the backend. */
static struct dds_plan *plan_make(struct dds_backend *b, const struct dds_model *m,
				  const uint8_t *mask, bool tail, const int *out, int n_out,
				  int max_batch, int *status, struct dds_err *err)
{
	struct dds_plan *p = NULL;
	int rc, bad, model_out;

	if (!b || !m || !mask || max_batch < 1) {
		rc = dds_backend_errf(err, DDS_BACKEND_EINVAL,
				      "plan: missing backend, model or mask, or max_batch %d < 1",
				      max_batch);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = dds_backend_errf(err, DDS_BACKEND_ENOMEM, "%s: plan: out of memory", m->name);
		goto out;
	}
	p->b = b;
	p->m = m;
	p->max_batch = max_batch;
	model_out = m->output + 1;
	rc = tail ? plan_check_tail(m, mask, err) : DDS_BACKEND_OK;
	if (rc == DDS_BACKEND_OK)
		rc = plan_describe(p, mask, tail ? &model_out : out, tail ? 1 : n_out, err);
	if (rc == DDS_BACKEND_OK && (bad = plan_unsupported(p)) >= 0)
		rc = dds_backend_errf(err, DDS_BACKEND_EUNSUPPORTED,
				      "%s: plan: backend '%s' cannot run layer '%s' (op %s)", m->name,
				      dds_backend_name(b), m->layers[bad].name,
				      dds_op_name(m->layers[bad].op));
	if (rc == DDS_BACKEND_OK)
		rc = b->iface.plan_create(b, p, err);
out:
	if (rc != DDS_BACKEND_OK) {
		dds_plan_free(p);
		p = NULL;
	}
	if (status)
		*status = rc;
	return p;
}

struct dds_plan *dds_plan_create(struct dds_backend *b, const struct dds_model *m,
				 const uint8_t *tail_mask, int max_batch, int *status,
				 struct dds_err *err)
{
	return plan_make(b, m, tail_mask, true, NULL, 0, max_batch, status, err);
}

struct dds_plan *dds_plan_create_values(struct dds_backend *b, const struct dds_model *m,
					const uint8_t *run_mask, const int *out_values, int n_out,
					int max_batch, int *status, struct dds_err *err)
{
	return plan_make(b, m, run_mask, false, out_values, n_out, max_batch, status, err);
}

void dds_plan_free(struct dds_plan *p)
{
	if (!p)
		return;
	if (p->context && p->b->iface.plan_free)
		p->b->iface.plan_free(p);
	free(p->mask);
	free(p->in_val);
	free(p->in_numel);
	free(p->out_val);
	free(p->out_numel);
	free(p);
}

int dds_plan_n_inputs(const struct dds_plan *p)
{
	return p ? p->n_in : 0;
}

int dds_plan_input_value(const struct dds_plan *p, int k)
{
	return p && k >= 0 && k < p->n_in ? p->in_val[k] : -1;
}

int dds_plan_n_outputs(const struct dds_plan *p)
{
	return p ? p->n_out : 0;
}

int dds_plan_output_value(const struct dds_plan *p, int k)
{
	return p && k >= 0 && k < p->n_out ? p->out_val[k] : -1;
}

size_t dds_plan_input_floats(const struct dds_plan *p)
{
	return p ? p->in_floats : 0;
}

size_t dds_plan_output_floats(const struct dds_plan *p)
{
	return p ? p->out_floats : 0;
}

int dds_plan_max_batch(const struct dds_plan *p)
{
	return p ? p->max_batch : 0;
}

int dds_plan_pack(const struct dds_plan *p, const float *const *req, int batch, float *in)
{
	if (!p || !req || !in || batch < 1 || batch > p->max_batch)
		return DDS_BACKEND_EINVAL;
	for (int i = 0; i < batch; i++)
		if (!req[i])
			return DDS_BACKEND_EINVAL;
	size_t off = 0;
	for (int k = 0; k < p->n_in; k++) {
		for (int i = 0; i < batch; i++) {
			memcpy(in, req[i] + off, p->in_numel[k] * sizeof(float));
			in += p->in_numel[k];
		}
		off += p->in_numel[k];
	}
	return DDS_BACKEND_OK;
}

int dds_plan_pack_values(const struct dds_plan *p, const float *const *src, int batch, float *in)
{
	if (!p || !src || !in || batch < 1 || batch > p->max_batch)
		return DDS_BACKEND_EINVAL;
	for (int i = 0; i < batch * p->n_in; i++)
		if (!src[i])
			return DDS_BACKEND_EINVAL;
	for (int k = 0; k < p->n_in; k++)
		for (int i = 0; i < batch; i++) {
			memcpy(in, src[(size_t)i * p->n_in + k], p->in_numel[k] * sizeof(float));
			in += p->in_numel[k];
		}
	return DDS_BACKEND_OK;
}

int dds_plan_run(struct dds_plan *p, const float *in, int batch, float *out, struct dds_err *err)
{
	if (!p || !in || !out)
		return dds_backend_errf(err, DDS_BACKEND_EINVAL, "plan run: missing plan or buffer");
	if (batch < 1 || batch > p->max_batch)
		return dds_backend_errf(err, DDS_BACKEND_EINVAL,
					"%s: plan run: batch %d out of range [1, %d]", p->m->name,
					batch, p->max_batch);
	return p->b->iface.plan_run(p, in, batch, out, err);
}
