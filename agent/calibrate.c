/* calibrate.c: dds-agent's per-layer local times: measured on the CPU engine, saved with the model hash, reused while the hash matches. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

/* File format (also a profile for dds-partition --profile: '#' lines are comments):
 *   # dds-agent calibration: model NAME hash HEX16 threads N
 *   LAYER_NAME SECONDS          one line per layer, in model order
 */
#define CAL_TAG "# dds-agent calibration:"

/* Read a calibration file for m; 0 when it holds m's hash, `threads` and one time for every
 * layer (secs filled), else 1 with the reason in why (secs may be partly written). */
static int cal_read(const struct dds_model *m, int threads, const char *path, double *secs,
		    char *why, size_t why_len)
{
	char line[512], name[DDS_NAME_MAX + 1], model[DDS_NAME_MAX + 1];
	FILE *f = fopen(path, "r");
	uint64_t hash = 0;
	int th = -1, seen = 0, rc = 1;

	if (!f) {
		snprintf(why, why_len, "%s", strerror(errno));
		return 1;
	}
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, CAL_TAG " model %64s hash %" SCNx64 " threads %d", model, &hash, &th) != 3)
		snprintf(why, why_len, "no calibration header");
	else if (hash != m->hash || th != threads)
		snprintf(why, why_len, "made for hash %016" PRIx64 " and %d threads", hash, th);
	else
		rc = 0;
	for (int k = 0; k < m->n_layers; k++)
		secs[k] = -1; /* not seen yet */
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		double s;
		int k;

		line[strcspn(line, "\r\n")] = 0;
		if (line[0] == '#' || line[0] == 0)
			continue;
		if (sscanf(line, "%64s %lf", name, &s) != 2 || (k = dds_model_find(m, name)) < 0 ||
		    !isfinite(s) || s < 0 || secs[k] >= 0) {
			snprintf(why, why_len, "bad line '%.60s'", line);
			rc = 1;
		} else {
			secs[k] = s;
			seen++;
		}
	}
	fclose(f);
	if (rc == 0 && seen != m->n_layers) {
		snprintf(why, why_len, "%d of %d layers", seen, m->n_layers);
		rc = 1;
	}
	return rc;
}

static int cal_write(const struct dds_model *m, int threads, const char *path,
		     const double *secs, char *err, size_t err_len)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return dds_fail(err, err_len, "%s: %s", path, strerror(errno));
	fprintf(f, CAL_TAG " model %s hash %016" PRIx64 " threads %d\n", m->name, m->hash,
		threads);
	for (int k = 0; k < m->n_layers; k++)
		fprintf(f, "%s %.9e\n", m->layers[k].name, secs[k]);
	if (fclose(f))
		return dds_fail(err, err_len, "%s: %s", path, strerror(errno));
	return 0;
}

/* Time each layer alone, `reps` times, keeping the least (inputs from a whole warm-up run). */
static int cal_measure(const struct dds_model *m, struct dds_engine *e, int reps, double *secs,
		       char *err, size_t err_len)
{
	uint8_t *mask = calloc((size_t)m->n_layers, 1);
	float *in = dds_engine_value(e, 0);
	size_t n_in = dds_shape_numel(&m->in_shape);
	struct dds_err de;
	int rc = 0;

	if (!mask)
		return dds_fail(err, err_len, "out of memory for calibration");
	for (size_t i = 0; i < n_in; i++)
		in[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
	if (dds_engine_run(e, NULL, 1, &de))
		rc = dds_fail(err, err_len, "calibration run: %s", de.msg);
	for (int k = 0; k < m->n_layers && rc == 0; k++) {
		mask[k] = 1;
		secs[k] = INFINITY;
		for (int r = 0; r < reps && rc == 0; r++) {
			uint64_t t0 = dds_agent_now_ns();

			if (dds_engine_run(e, mask, 1, &de))
				rc = dds_fail(err, err_len, "calibration of %s: %s", m->layers[k].name,
					  de.msg);
			secs[k] = fmin(secs[k], (double)(dds_agent_now_ns() - t0) * 1e-9);
		}
		mask[k] = 0;
	}
	free(mask);
	return rc;
}

int dds_agent_calibrate(const struct dds_model *m, struct dds_engine *e, int threads,
			const char *path, int reps, double *secs, char *err, size_t err_len)
{
	char why[160] = "no file given";
	uint64_t t0 = dds_agent_now_ns();
	double total = 0;

	if (path && cal_read(m, threads, path, secs, why, sizeof(why)) == 0) {
		for (int k = 0; k < m->n_layers; k++)
			total += secs[k];
		fprintf(stderr, "dds-agent: calibration: reused %s (model %s hash %016" PRIx64
			", %d threads): %d layers, %.6f s in all\n", path, m->name, m->hash, threads,
			m->n_layers, total);
		return 0;
	}
	if (cal_measure(m, e, reps, secs, err, err_len))
		return -1;
	for (int k = 0; k < m->n_layers; k++)
		total += secs[k];
	if (path && cal_write(m, threads, path, secs, err, err_len))
		return -1;
	fprintf(stderr, "dds-agent: calibration: measured %d layers x %d runs in %.3f s (%s), "
		"%.6f s in all%s%s\n", m->n_layers, reps, (double)(dds_agent_now_ns() - t0) * 1e-9,
		why, total, path ? ", saved to " : "", path ? path : "");
	return 0;
}
