/* part_model.c: adapter from a model graph (and a measured profile file) to the partitioner's
 * plain input, kept apart so the core needs neither jansson nor the model loader. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dds_part_model.h"
#include "part_int.h"

void dds_part_model_input_free(struct dds_part_model_input *mi)
{
	if (!mi)
		return;
	free(mi->in_off);
	free(mi->in_val);
	free(mi->a);
	free(mi->w);
	free(mi->d);
	memset(mi, 0, sizeof(*mi));
}

static int check_linear(const struct dds_part_linear *p, struct dds_part_err *err)
{
	if (!(p->device_flops > 0) || !isfinite(p->device_flops))
		return part_errf(err, "device speed must be > 0 FLOP/s (got %g)", p->device_flops);
	if (!(p->beta > 0) || !isfinite(p->beta))
		return part_errf(err, "beta must be > 0 (got %g)", p->beta);
	if (!(p->up_bw > 0) || !(p->down_bw > 0))
		return part_errf(err, "bandwidths must be > 0 (uplink %g, downlink %g bytes/s)",
				 p->up_bw, p->down_bw);
	return 0;
}

int dds_part_graph_from_model(const struct dds_model *m, const struct dds_part_linear *p,
			      struct dds_part_model_input *out, struct dds_part_err *err)
{
	struct dds_part_model_input mi = {0};
	int n = m->n_layers, e = 0;
	if (check_linear(p, err))
		return -1;
	for (int k = 0; k < n; k++)
		e += m->layers[k].n_in;
	mi.in_off = calloc((size_t)n + 1, sizeof(int));
	mi.in_val = calloc((size_t)e + 1, sizeof(int));
	mi.a = calloc((size_t)n + 1, sizeof(double));
	mi.w = calloc((size_t)n + 1, sizeof(double));
	mi.d = calloc((size_t)n + 1, sizeof(double));
	if (!mi.in_off || !mi.in_val || !mi.a || !mi.w || !mi.d) {
		dds_part_model_input_free(&mi);
		return part_errf(err, "out of memory for the partitioner input of %s", m->name);
	}
	for (int k = 0; k < n; k++) {
		const struct dds_layer *l = &m->layers[k];
		double f = p->use_macs ? l->macs : l->flops;
		mi.in_off[k + 1] = mi.in_off[k] + l->n_in;
		memcpy(mi.in_val + mi.in_off[k], l->in, sizeof(int) * (size_t)l->n_in);
		mi.a[k] = p->beta * f / p->device_flops;
		mi.w[k] = f;
		mi.d[k] = (double)l->out_bytes;
	}
	mi.in = (struct dds_part_input){
		.n = n, .in_off = mi.in_off, .in_val = mi.in_val, .a = mi.a, .w = mi.w, .d = mi.d,
		.d_in = (double)m->in_bytes, .d_out = (double)m->layers[m->output].out_bytes,
		.output = m->output, .up_bw = p->up_bw, .down_bw = p->down_bw,
	};
	if (dds_part_input_check(&mi.in, err)) {
		dds_part_model_input_free(&mi);
		return -1;
	}
	*out = mi;
	return 0;
}

static int parse_num(const char *tok, double *x)
{
	char *end;
	errno = 0;
	*x = strtod(tok, &end);
	return tok == end || *end || errno || !isfinite(*x) || *x < 0 ? -1 : 0;
}

/* One profile line: fills a[k] (and w[k] when given) and marks k seen. */
static int profile_line(const struct dds_model *m, char *line, const char *where, double *a,
			double *w, uint8_t *seen, struct dds_part_err *err)
{
	char *save, *name = strtok_r(line, " \t\r\n", &save);
	if (!name || name[0] == '#')
		return 0;
	char *t_loc = strtok_r(NULL, " \t\r\n", &save), *t_work = strtok_r(NULL, " \t\r\n", &save);
	int k = dds_model_find(m, name);
	if (k < 0)
		return part_errf(err, "%s: no layer '%s' in model %s", where, name, m->name);
	if (seen[k])
		return part_errf(err, "%s: layer '%s' listed twice", where, name);
	if (!t_loc || parse_num(t_loc, &a[k]))
		return part_errf(err, "%s: layer '%s': local time must be a number >= 0 (seconds)",
				 where, name);
	if (t_work && parse_num(t_work, &w[k]))
		return part_errf(err, "%s: layer '%s': server work must be a number >= 0", where,
				 name);
	if (strtok_r(NULL, " \t\r\n", &save))
		return part_errf(err, "%s: layer '%s': more than 3 fields", where, name);
	seen[k] = 1;
	return 0;
}

static int profile_read(const struct dds_model *m, FILE *f, const char *path, double *a,
			double *w, uint8_t *seen, struct dds_part_err *err)
{
	char line[512], where[300];
	for (int no = 1; fgets(line, sizeof(line), f); no++) {
		snprintf(where, sizeof(where), "%s:%d", path, no);
		if (!strchr(line, '\n') && !feof(f))
			return part_errf(err, "%s: line too long", where);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		if (profile_line(m, line, where, a, w, seen, err))
			return -1;
	}
	if (ferror(f))
		return part_errf(err, "%s: read error", path);
	for (int k = 0; k < m->n_layers; k++)
		if (!seen[k])
			return part_errf(err, "%s: layer '%s' missing (every layer needs a line)",
					 path, m->layers[k].name);
	return 0;
}

int dds_part_profile_load(const struct dds_model *m, const char *path,
			  struct dds_part_model_input *mi, struct dds_part_err *err)
{
	size_t n = (size_t)m->n_layers;
	FILE *f = fopen(path, "r");
	if (!f)
		return part_errf(err, "%s: %s", path, strerror(errno));
	double *a = calloc(n, sizeof(double)), *w = calloc(n, sizeof(double));
	uint8_t *seen = calloc(n, 1);
	int rc = -1;
	if (!a || !w || !seen) {
		part_errf(err, "out of memory reading %s", path);
	} else {
		memcpy(w, mi->w, n * sizeof(double));
		rc = profile_read(m, f, path, a, w, seen, err);
	}
	if (rc == 0) {
		memcpy(mi->a, a, n * sizeof(double));
		memcpy(mi->w, w, n * sizeof(double));
	}
	fclose(f);
	free(a);
	free(w);
	free(seen);
	return rc;
}
