/* loader.c: reads a model graph from JSON (jansson), checks it and builds struct dds_model. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

/* The attributes each op accepts, besides name/op/inputs; anything else is an error. */
static const char *const op_keys[DDS_OP__COUNT] = {
	[DDS_OP_CONV2D] = "out_channels kernel stride padding dilation groups bias bn eps act",
	[DDS_OP_BATCHNORM] = "eps",
	[DDS_OP_MAXPOOL] = "kernel stride padding ceil_mode",
	[DDS_OP_AVGPOOL] = "kernel stride padding ceil_mode count_include_pad",
	[DDS_OP_ADAPTIVE_AVGPOOL] = "output_size",
	[DDS_OP_LINEAR] = "out_features bias act",
	[DDS_OP_ADD] = "act",
	[DDS_OP_CONCAT] = "axis",
	[DDS_OP_LAYERNORM] = "eps",
	[DDS_OP_MHA] = "heads",
	[DDS_OP_SELECT_TOKEN] = "index",
};

struct ctx {
	const char *origin; /* file name for messages */
	struct dds_err *err;
	struct dds_model *m;
	const char *layer; /* current layer name, for messages */
	bool graph_only;   /* no weights arena: every dds_param.data stays NULL */
};

#define CFAIL(c, ...) fail_at((c), __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int fail_at(struct ctx *c, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (c->layer)
		return dds_errf(c->err, "%s: layer '%s': %s", c->origin, c->layer, what);
	return dds_errf(c->err, "%s: %s", c->origin, what);
}

static int key_allowed(enum dds_op op, const char *key)
{
	if (!strcmp(key, "name") || !strcmp(key, "op") || !strcmp(key, "inputs"))
		return 1;
	const char *list = op_keys[op];
	size_t n = strlen(key);
	while (list && *list) {
		const char *end = strchr(list, ' ');
		size_t len = end ? (size_t)(end - list) : strlen(list);
		if (len == n && !strncmp(list, key, n))
			return 1;
		list = end ? end + 1 : NULL;
	}
	return 0;
}

/* An integer attribute in [lo, hi]; `def` when absent (def < lo means required). */
static int get_int(struct ctx *c, json_t *o, const char *key, int def, int lo, int hi, int *out)
{
	json_t *v = json_object_get(o, key);
	if (!v) {
		if (def < lo)
			return CFAIL(c, "missing required attribute '%s'", key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v))
		return CFAIL(c, "attribute '%s' must be an integer", key);
	json_int_t x = json_integer_value(v);
	if (x < lo || x > hi)
		return CFAIL(c, "attribute '%s' = %lld is out of range [%d, %d]", key, (long long)x, lo,
			     hi);
	*out = (int)x;
	return 0;
}

/* A pair [h, w] or one integer for both. */
static int get_pair(struct ctx *c, json_t *o, const char *key, int def, int lo, int hi, int out[2])
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_integer(v)) {
		if (get_int(c, o, key, def, lo, hi, &out[0]))
			return -1;
		out[1] = out[0];
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
	    !json_is_integer(json_array_get(v, 1)))
		return CFAIL(c, "attribute '%s' must be an integer or [h, w]", key);
	for (int i = 0; i < 2; i++) {
		json_int_t x = json_integer_value(json_array_get(v, (size_t)i));
		if (x < lo || x > hi)
			return CFAIL(c, "attribute '%s'[%d] = %lld is out of range [%d, %d]", key, i,
				     (long long)x, lo, hi);
		out[i] = (int)x;
	}
	return 0;
}

static int get_bool(struct ctx *c, json_t *o, const char *key, bool def, bool *out)
{
	json_t *v = json_object_get(o, key);
	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return CFAIL(c, "attribute '%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int get_act(struct ctx *c, json_t *o, enum dds_act *out)
{
	static const char *const names[] = {"none", "relu", "gelu"};
	json_t *v = json_object_get(o, "act");
	*out = DDS_ACT_NONE;
	if (!v)
		return 0;
	for (int i = 0; i < 3; i++)
		if (json_is_string(v) && !strcmp(json_string_value(v), names[i])) {
			*out = (enum dds_act)i;
			return 0;
		}
	return CFAIL(c, "attribute 'act' must be \"none\", \"relu\" or \"gelu\"");
}

static int get_eps(struct ctx *c, json_t *o, float *out)
{
	json_t *v = json_object_get(o, "eps");
	*out = 1e-5f;
	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1)
		return CFAIL(c, "attribute 'eps' must be a number in (0, 1]");
	*out = (float)json_number_value(v);
	return 0;
}

#define BIG 1000000

static int parse_attrs(struct ctx *c, json_t *o, struct dds_layer *l)
{
	int rc = 0;
	l->groups = 1;
	l->dilation[0] = l->dilation[1] = 1;
	switch (l->op) {
	case DDS_OP_CONV2D:
		rc = get_int(c, o, "out_channels", 0, 1, BIG, &l->out_channels) ||
		     get_pair(c, o, "kernel", 0, 1, 1024, l->kernel) ||
		     get_pair(c, o, "stride", 1, 1, 1024, l->stride) ||
		     get_pair(c, o, "padding", 0, 0, 1024, l->padding) ||
		     get_pair(c, o, "dilation", 1, 1, 1024, l->dilation) ||
		     get_int(c, o, "groups", 1, 1, BIG, &l->groups) ||
		     get_bool(c, o, "bias", false, &l->bias) || get_bool(c, o, "bn", false, &l->bn) ||
		     get_eps(c, o, &l->eps) || get_act(c, o, &l->act);
		break;
	case DDS_OP_MAXPOOL:
	case DDS_OP_AVGPOOL:
		rc = get_pair(c, o, "kernel", 0, 1, 1024, l->kernel);
		if (!rc) {
			int s[2];
			rc = get_pair(c, o, "stride", l->kernel[0], 1, 1024, s) ||
			     get_pair(c, o, "padding", 0, 0, 1024, l->padding) ||
			     get_bool(c, o, "ceil_mode", false, &l->ceil_mode) ||
			     get_bool(c, o, "count_include_pad", true, &l->count_include_pad);
			/* a missing stride defaults to the kernel, per axis */
			l->stride[0] = json_object_get(o, "stride") ? s[0] : l->kernel[0];
			l->stride[1] = json_object_get(o, "stride") ? s[1] : l->kernel[1];
		}
		break;
	case DDS_OP_ADAPTIVE_AVGPOOL:
		rc = get_pair(c, o, "output_size", 1, 1, 4096, l->output_size);
		break;
	case DDS_OP_LINEAR:
		rc = get_int(c, o, "out_features", 0, 1, BIG, &l->out_features) ||
		     get_bool(c, o, "bias", true, &l->bias) || get_act(c, o, &l->act);
		break;
	case DDS_OP_ADD:
		rc = get_act(c, o, &l->act);
		break;
	case DDS_OP_CONCAT:
		rc = get_int(c, o, "axis", 0, 0, DDS_MAX_DIMS - 1, &l->axis);
		break;
	case DDS_OP_BATCHNORM:
	case DDS_OP_LAYERNORM:
		rc = get_eps(c, o, &l->eps);
		break;
	case DDS_OP_MHA:
		rc = get_int(c, o, "heads", 0, 1, 4096, &l->heads);
		break;
	case DDS_OP_SELECT_TOKEN:
		rc = get_int(c, o, "index", 0, 0, BIG, &l->index);
		break;
	default:
		break;
	}
	return rc ? -1 : 0;
}

/* Resolve a value name: "input" is 0, an earlier layer k is k+1; -1 if unknown. */
static int resolve(const struct dds_model *m, int upto, const char *name)
{
	if (!strcmp(name, "input"))
		return 0;
	for (int i = 0; i < upto; i++)
		if (!strcmp(m->layers[i].name, name))
			return i + 1;
	return -1;
}

static int parse_inputs(struct ctx *c, json_t *o, int li)
{
	struct dds_model *m = c->m;
	struct dds_layer *l = &m->layers[li];
	json_t *ins = json_object_get(o, "inputs");
	if (!json_is_array(ins) || json_array_size(ins) == 0 || json_array_size(ins) > 64)
		return CFAIL(c, "'inputs' must be a non-empty array of at most 64 names");
	l->n_in = (int)json_array_size(ins);
	l->in = calloc((size_t)l->n_in, sizeof(int));
	if (!l->in)
		return CFAIL(c, "out of memory");
	for (int k = 0; k < l->n_in; k++) {
		json_t *v = json_array_get(ins, (size_t)k);
		if (!json_is_string(v))
			return CFAIL(c, "inputs[%d] must be a string", k);
		int id = resolve(m, li, json_string_value(v));
		if (id < 0)
			return CFAIL(c, "input '%s' is not 'input' or a layer defined above",
				     json_string_value(v));
		l->in[k] = id;
	}
	return 0;
}

static int parse_layer(struct ctx *c, json_t *o, int li)
{
	struct dds_layer *l = &c->m->layers[li];
	const char *key;
	json_t *v;

	c->layer = NULL;
	if (!json_is_object(o))
		return CFAIL(c, "layers[%d] must be an object", li);
	json_t *jn = json_object_get(o, "name"), *jo = json_object_get(o, "op");
	if (!json_is_string(jn) || !json_string_length(jn) || json_string_length(jn) >= DDS_NAME_MAX)
		return CFAIL(c, "layers[%d]: 'name' must be a string of 1..%d bytes", li,
			     DDS_NAME_MAX - 1);
	snprintf(l->name, sizeof(l->name), "%s", json_string_value(jn));
	c->layer = l->name;
	if (!strcmp(l->name, "input") || resolve(c->m, li, l->name) > 0)
		return CFAIL(c, "duplicate or reserved layer name");
	int op = json_is_string(jo) ? dds_op_from_name(json_string_value(jo)) : -1;
	if (op < 0)
		return CFAIL(c, "unknown op '%s'", json_is_string(jo) ? json_string_value(jo) : "(none)");
	l->op = (enum dds_op)op;
	json_object_foreach(o, key, v)
	{
		if (!key_allowed(l->op, key))
			return CFAIL(c, "unknown attribute '%s' for op %s", key, dds_op_name(l->op));
	}
	if (parse_inputs(c, o, li) || parse_attrs(c, o, l))
		return -1;
	return dds_layer_finish(c->m, li, c->origin, c->err);
}

static int parse_input_shape(struct ctx *c, json_t *root)
{
	json_t *in = json_object_get(root, "input");
	json_t *sh = json_is_object(in) ? json_object_get(in, "shape") : NULL;
	if (!json_is_array(sh) || json_array_size(sh) < 1 || json_array_size(sh) > DDS_MAX_DIMS)
		return CFAIL(c, "'input.shape' must be an array of 1..%d positive integers",
			     DDS_MAX_DIMS);
	c->m->in_shape.ndim = (int)json_array_size(sh);
	for (size_t i = 0; i < json_array_size(sh); i++) {
		json_t *d = json_array_get(sh, i);
		if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 65536)
			return CFAIL(c, "'input.shape'[%zu] must be an integer in [1, 65536]", i);
		c->m->in_shape.d[i] = (int)json_integer_value(d);
	}
	if (dds_shape_numel(&c->m->in_shape) > DDS_MAX_TENSOR_ELEMS)
		return CFAIL(c, "'input.shape' has more than %d elements", DDS_MAX_TENSOR_ELEMS);
	c->m->in_bytes = dds_shape_numel(&c->m->in_shape) * sizeof(float);
	return 0;
}

/* Successor lists, edge count, totals and the weights arena. */
static int link_layers(struct ctx *c)
{
	struct dds_model *m = c->m;
	int *count = calloc((size_t)m->n_layers + 1, sizeof(int));
	if (!count)
		return CFAIL(c, "out of memory");
	for (int i = 0; i < m->n_layers; i++)
		for (int k = 0; k < m->layers[i].n_in; k++)
			count[m->layers[i].in[k]]++;
	m->in_succ = calloc((size_t)count[0] + 1, sizeof(int));
	for (int i = 0; i < m->n_layers; i++)
		m->layers[i].succ = calloc((size_t)count[i + 1] + 1, sizeof(int));
	free(count);
	for (int i = 0; i < m->n_layers; i++) {
		struct dds_layer *l = &m->layers[i];
		m->flops += l->flops;
		m->macs += l->macs;
		for (int k = 0; k < l->n_in; k++) {
			int v = l->in[k];
			int **list = v ? &m->layers[v - 1].succ : &m->in_succ;
			int *n = v ? &m->layers[v - 1].n_succ : &m->n_in_succ;
			if (!*list)
				return CFAIL(c, "out of memory");
			/* a layer reading the same value twice is one edge */
			if (*n && (*list)[*n - 1] == i)
				continue;
			(*list)[(*n)++] = i;
			m->n_edges++;
		}
		for (int p = 0; p < l->n_params; p++)
			m->n_weights += l->params[p].count;
		if (m->n_weights > (size_t)4 * DDS_MAX_TENSOR_ELEMS)
			return CFAIL(c, "more than %zu parameters in all", (size_t)4 * DDS_MAX_TENSOR_ELEMS);
	}
	if (!m->in_succ)
		return CFAIL(c, "out of memory");
	if (c->graph_only)
		return 0;
	m->weights = malloc((m->n_weights ? m->n_weights : 1) * sizeof(float));
	if (!m->weights)
		return CFAIL(c, "out of memory for %zu weights", m->n_weights);
	float *w = m->weights;
	for (int i = 0; i < m->n_layers; i++)
		for (int p = 0; p < m->layers[i].n_params; p++) {
			m->layers[i].params[p].data = w;
			w += m->layers[i].params[p].count;
		}
	return 0;
}

static int check_outputs(struct ctx *c, json_t *root)
{
	struct dds_model *m = c->m;
	json_t *out = json_object_get(root, "output");
	c->layer = NULL;
	if (!json_is_string(out) || (m->output = dds_model_find(m, json_string_value(out))) < 0)
		return CFAIL(c, "'output' must name a layer");
	for (int i = 0; i < m->n_layers; i++) {
		c->layer = m->layers[i].name;
		if (i != m->output && m->layers[i].n_succ == 0)
			return CFAIL(c, "the layer's output is never used (only 'output' may be a sink)");
	}
	return 0;
}

static int parse_root(struct ctx *c, json_t *root)
{
	const char *key;
	json_t *v;
	if (!json_is_object(root))
		return CFAIL(c, "the top level must be an object");
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "format") && strcmp(key, "name") && strcmp(key, "input") &&
		    strcmp(key, "layers") && strcmp(key, "output") && strcmp(key, "comment"))
			return CFAIL(c, "unknown top-level key '%s'", key);
	}
	json_t *fmt = json_object_get(root, "format");
	if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "dds-model/1"))
		return CFAIL(c, "'format' must be \"dds-model/1\"");
	json_t *name = json_object_get(root, "name");
	snprintf(c->m->name, sizeof(c->m->name), "%s",
		 json_is_string(name) ? json_string_value(name) : c->origin);
	json_t *layers = json_object_get(root, "layers");
	if (!json_is_array(layers) || json_array_size(layers) < 1 || json_array_size(layers) > 100000)
		return CFAIL(c, "'layers' must be a non-empty array");
	if (parse_input_shape(c, root))
		return -1;
	c->m->n_layers = (int)json_array_size(layers);
	c->m->layers = calloc((size_t)c->m->n_layers, sizeof(struct dds_layer));
	if (!c->m->layers)
		return CFAIL(c, "out of memory");
	for (int i = 0; i < c->m->n_layers; i++)
		if (parse_layer(c, json_array_get(layers, (size_t)i), i))
			return -1;
	c->layer = NULL;
	return link_layers(c) || check_outputs(c, root) ? -1 : 0;
}

static uint64_t fnv1a64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

/* Parse, check and (unless graph_only) fill the weights. */
static int load_text(const char *text, size_t len, const char *origin, const char *weights_path,
		     uint64_t seed, bool graph_only, struct dds_model **out, struct dds_err *err)
{
	json_error_t jerr;
	struct dds_model *m = calloc(1, sizeof(*m));
	struct ctx c = {.origin = origin, .err = err, .m = m, .graph_only = graph_only};
	if (!m)
		return dds_errf(err, "%s: out of memory", origin);
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		dds_model_free(m);
		return dds_errf(err, "%s:%d:%d: invalid JSON: %s", origin, jerr.line, jerr.column,
				jerr.text);
	}
	int rc = parse_root(&c, root);
	json_decref(root);
	if (!rc) {
		m->hash = fnv1a64(text, len);
		if (!graph_only && weights_path)
			rc = dds_weights_read(m, weights_path, err);
		else if (!graph_only)
			dds_weights_seed(m, seed);
	}
	if (rc) {
		dds_model_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

int dds_model_load_string(const char *text, size_t len, const char *origin,
			  const char *weights_path, uint64_t seed, struct dds_model **out,
			  struct dds_err *err)
{
	return load_text(text, len, origin, weights_path, seed, false, out, err);
}

/* Read a whole file (at most 256 MiB) into a malloc'd buffer. Returns 0, or -1 with err. */
static int read_file(const char *path, char **text, size_t *size, struct dds_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return dds_errf(err, "%s: cannot open model file: %s", path, strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (len == cap) {
			char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
			if (!nb || cap > ((size_t)256 << 20)) {
				free(nb ? nb : buf);
				fclose(f);
				return dds_errf(err, "%s: model file too large or out of memory", path);
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return dds_errf(err, "%s: read error", path);
	}
	*text = buf;
	*size = len;
	return 0;
}

static int load_file(const char *path, const char *weights_path, uint64_t seed, bool graph_only,
		     struct dds_model **out, struct dds_err *err)
{
	char *text = NULL;
	size_t len = 0;
	if (read_file(path, &text, &len, err))
		return -1;
	int rc = load_text(text, len, path, weights_path, seed, graph_only, out, err);
	free(text);
	return rc;
}

int dds_model_load(const char *json_path, const char *weights_path, uint64_t seed,
		   struct dds_model **out, struct dds_err *err)
{
	return load_file(json_path, weights_path, seed, false, out, err);
}

int dds_model_load_graph(const char *json_path, struct dds_model **out, struct dds_err *err)
{
	return load_file(json_path, NULL, 0, true, out, err);
}

void dds_model_free(struct dds_model *m)
{
	if (!m)
		return;
	for (int i = 0; m->layers && i < m->n_layers; i++) {
		free(m->layers[i].in);
		free(m->layers[i].succ);
	}
	free(m->layers);
	free(m->in_succ);
	free(m->weights);
	free(m);
}
