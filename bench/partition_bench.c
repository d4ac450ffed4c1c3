/* partition_bench: decision time of the partitioner on real models (ResNet50, ViT by default):
 * a min-cut from scratch, a profile update plus min-cut, the envelope build and an envelope
 * lookup; wall time, and with --instructions the instruction count per call (valgrind's
 * callgrind, stable from run to run). A benchmark, not a test: it prints figures. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dds_part_model.h"
#include "dds_partition.h"

#define N_R 64

/* Uplink (= downlink) bandwidth of the benchmark's profile, Mbit/s: 4G by default. */
static double uplink_mbps = 5.85;

struct bench {
	struct dds_model *m;
	struct dds_part_model_input mi;
	struct dds_part_ctx *ctx;
	struct dds_part_envelope *env;
	double r[N_R];
	double sink;
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int setup(struct bench *b, const char *path)
{
	struct dds_err merr;
	struct dds_part_err err;
	/* The paper's setting: a 12 GFLOP/s device. */
	struct dds_part_linear p = {.device_flops = 12e9, .beta = 1, .up_bw = uplink_mbps * 1e6 / 8,
				    .down_bw = uplink_mbps * 1e6 / 8};
	memset(b, 0, sizeof(*b));
	if (dds_model_load(path, NULL, 1, &b->m, &merr)) {
		fprintf(stderr, "partition_bench: %s\n", merr.msg);
		return -1;
	}
	if (dds_part_graph_from_model(b->m, &p, &b->mi, &err) ||
	    dds_part_ctx_new(&b->mi.in, &b->ctx, &err) ||
	    dds_part_envelope_new(b->ctx, &b->env, &err)) {
		fprintf(stderr, "partition_bench: %s: %s\n", path, err.msg);
		return -1;
	}
	for (int i = 0; i < N_R; i++)
		b->r[i] = 1e9 * pow(1e4, i / (double)(N_R - 1));
	return 0;
}

static void teardown(struct bench *b)
{
	dds_part_envelope_free(b->env);
	dds_part_ctx_free(b->ctx);
	dds_part_model_input_free(&b->mi);
	dds_model_free(b->m);
}

static void run_solve(struct bench *b, long iters)
{
	struct dds_part_result res;
	for (long i = 0; i < iters; i++) {
		dds_part_solve(b->ctx, b->r[i % N_R], &res, NULL);
		b->sink += res.total;
	}
}

static void run_update(struct bench *b, long iters)
{
	struct dds_part_result res;
	for (long i = 0; i < iters; i++) {
		dds_part_ctx_update(b->ctx, &b->mi.in, NULL);
		dds_part_solve(b->ctx, b->r[i % N_R], &res, NULL);
		b->sink += res.total;
	}
}

static void run_lookup(struct bench *b, long iters)
{
	for (long i = 0; i < iters; i++) {
		double r = b->r[i % N_R] * (1 + 1e-3 * (double)(i & 255));
		b->sink += dds_part_piece_latency(dds_part_envelope_lookup(b->env, r), r);
	}
}

static void run_envelope(struct bench *b, long iters)
{
	for (long i = 0; i < iters; i++) {
		struct dds_part_envelope *env;
		if (dds_part_envelope_new(b->ctx, &env, NULL) == 0) {
			b->sink += dds_part_envelope_count(env);
			dds_part_envelope_free(env);
		}
	}
}

static const struct phase {
	const char *name, *what, *functions;
	void (*run)(struct bench *, long);
	long iters;
} phases[] = {
	{"solve", "min-cut from scratch (dds_part_solve)", "dds_part_solve", run_solve, 20000},
	{"update", "new profile + min-cut (ctx_update + solve)", "dds_part_ctx_update,dds_part_solve",
	 run_update, 20000},
	{"lookup", "envelope lookup + T(r)", "dds_part_envelope_lookup,dds_part_piece_latency",
	 run_lookup, 4000000},
	{"envelope", "envelope build (all breakpoints)", "dds_part_envelope_new", run_envelope, 500},
};

#define N_PHASES (sizeof(phases) / sizeof(phases[0]))

/* Best of 5 rounds, in ns per call. */
static double time_phase(struct bench *b, const struct phase *ph)
{
	double best = INFINITY;
	ph->run(b, ph->iters / 10); /* warm up */
	for (int round = 0; round < 5; round++) {
		double t0 = now_ns();
		ph->run(b, ph->iters / 5);
		double t = (now_ns() - t0) / (double)(ph->iters / 5);
		best = t < best ? t : best;
	}
	return best;
}

/* Instructions per call: run this program under callgrind, counting only inside the phase's
 * functions, and divide the total by the number of calls. Returns -1 if valgrind fails. */
static double count_phase(const char *self, const char *model, const struct phase *ph)
{
	char out[] = "/tmp/partition-bench-cg-XXXXXX", cmd[2048], toggles[256] = "", line[256];
	long iters = ph->iters / 100 > 0 ? ph->iters / 100 : 1;
	int fd = mkstemp(out);
	if (fd < 0)
		return -1;
	close(fd);
	char fns[128];
	snprintf(fns, sizeof(fns), "%s", ph->functions);
	for (char *save, *f = strtok_r(fns, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		size_t l = strlen(toggles);
		snprintf(toggles + l, sizeof(toggles) - l, " --toggle-collect=%s", f);
	}
	snprintf(cmd, sizeof(cmd),
		 "valgrind --tool=callgrind --collect-atstart=no%s --callgrind-out-file=%s "
		 "'%s' --uplink-mbps %g --only %s --iters %ld '%s' >/dev/null 2>&1",
		 toggles, out, self, uplink_mbps, ph->name, iters, model);
	double ir = -1;
	if (system(cmd) == 0) {
		FILE *f = fopen(out, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "totals:", 7) == 0 || strncmp(line, "summary:", 8) == 0)
				ir = strtod(strchr(line, ':') + 1, NULL) / (double)iters;
		if (f)
			fclose(f);
	}
	remove(out);
	return ir;
}

static void report(const char *self, const char *path, bool instructions)
{
	struct bench b;
	if (setup(&b, path)) {
		teardown(&b);
		return;
	}
	printf("%s (%s): %d layers, uplink %g Mbit/s, envelope of %d pieces\n", b.m->name, path,
	       b.m->n_layers, uplink_mbps, dds_part_envelope_count(b.env));
	for (size_t i = 0; i < N_PHASES; i++) {
		double ns = time_phase(&b, &phases[i]);
		printf("  %-44s %10.1f ns", phases[i].what, ns);
		if (instructions) {
			double ir = count_phase(self, path, &phases[i]);
			if (ir < 0)
				printf("   (valgrind failed)");
			else
				printf("   %10.0f instructions", ir);
		}
		printf("\n");
	}
	teardown(&b);
}

/* --only PHASE --iters N MODEL: what count_phase runs under valgrind. */
static int only(const char *name, long iters, const char *path)
{
	struct bench b;
	for (size_t i = 0; i < N_PHASES; i++) {
		if (strcmp(phases[i].name, name) != 0)
			continue;
		int rc = setup(&b, path);
		if (rc == 0)
			phases[i].run(&b, iters);
		teardown(&b);
		return rc ? 1 : 0;
	}
	fprintf(stderr, "partition_bench: unknown phase '%s'\n", name);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {{"instructions", no_argument, 0, 'i'},
					      {"only", required_argument, 0, 'o'},
					      {"iters", required_argument, 0, 'n'},
					      {"uplink-mbps", required_argument, 0, 'u'},
					      {0, 0, 0, 0}};
	const char *phase = NULL;
	long iters = 1000;
	bool instructions = false;
	int c;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		if (c == 'i')
			instructions = true;
		else if (c == 'o')
			phase = optarg;
		else if (c == 'n')
			iters = atol(optarg);
		else if (c == 'u' && atof(optarg) > 0)
			uplink_mbps = atof(optarg);
		else {
			fprintf(stderr, "usage: partition_bench [--instructions] [--uplink-mbps B] "
					"[MODEL.json ...]\n");
			return 2;
		}
	}
	if (phase)
		return optind < argc ? only(phase, iters, argv[optind]) : 2;
	const char *root = getenv("DDS_SOURCE_ROOT") ? getenv("DDS_SOURCE_ROOT") : ".";
	char def[2][512];
	snprintf(def[0], sizeof(def[0]), "%s/zoo/resnet50.json", root);
	snprintf(def[1], sizeof(def[1]), "%s/zoo/vit_b_16.json", root);
	if (optind == argc)
		for (int i = 0; i < 2; i++)
			report(argv[0], def[i], instructions);
	for (int i = optind; i < argc; i++)
		report(argv[0], argv[i], instructions);
	return 0;
}
