/* part_dump: writes latency graphs (random DAGs and model files) with the partitioner's min-cut
 * value, for nx_check.py to compare with networkx's minimum_cut.
 * usage: part_dump N_RANDOM SEED [MODEL.json ...] */
#include <stdio.h>
#include <stdlib.h>

#include "dds_part_model.h"
#include "randdag.h"

static int dump(const struct dds_part_input *in, const char *label, double r)
{
	struct dds_part_ctx *ctx;
	struct dds_part_result res;
	struct dds_part_err err;
	if (dds_part_ctx_new(in, &ctx, &err) || dds_part_solve(ctx, r, &res, &err)) {
		fprintf(stderr, "part_dump: %s: %s\n", label, err.msg);
		return -1;
	}
	printf("graph %s %.17g %.17g %.17g\n", label, r, res.total, dds_part_last_cut_value(ctx));
	int rc = dds_part_write_graph(ctx, r, stdout, &err);
	printf("end\n");
	dds_part_ctx_free(ctx);
	return rc;
}

static int dump_model(const char *path)
{
	struct dds_model *m;
	struct dds_err merr;
	struct dds_part_err err;
	if (dds_model_load(path, NULL, 1, &m, &merr)) {
		fprintf(stderr, "part_dump: %s\n", merr.msg);
		return -1;
	}
	int rc = 0;
	for (double mbps = 1.1; mbps < 100 && rc == 0; mbps *= 4) {
		struct dds_part_linear p = {.device_flops = 12e9, .beta = 1,
					    .up_bw = mbps * 1e6 / 8, .down_bw = mbps * 1e6 / 8};
		struct dds_part_model_input mi;
		if (dds_part_graph_from_model(m, &p, &mi, &err)) {
			fprintf(stderr, "part_dump: %s: %s\n", path, err.msg);
			rc = -1;
			break;
		}
		for (double r = 1e9; r <= 1e12 && rc == 0; r *= 10)
			rc = dump(&mi.in, m->name, r);
		dds_part_model_input_free(&mi);
	}
	dds_model_free(m);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: part_dump N_RANDOM SEED [MODEL.json ...]\n");
		return 2;
	}
	int n = atoi(argv[1]);
	uint64_t s = strtoull(argv[2], NULL, 0);
	for (int i = 0; i < n; i++) {
		struct randdag g;
		char label[32];
		randdag_make(&g, &s, RANDDAG_MAX);
		snprintf(label, sizeof(label), "random%d", i);
		if (dump(&g.in, label, g.r))
			return 1;
	}
	for (int i = 3; i < argc; i++)
		if (dump_model(argv[i]))
			return 1;
	return 0;
}
