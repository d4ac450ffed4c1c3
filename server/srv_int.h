/* srv_int.h: dds-server's internals shared by its files: the parsed config, the executor, telemetry. */
#ifndef DDS_SRV_INT_H
#define DDS_SRV_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "dds_dpdk.h"
#include "dds_engine.h"
#include "dds_model.h"
#include "dds_pricing.h"

#define SRV_MAX_MODELS 16
#define SRV_MAX_EAL_ARGS 64

struct srv_model_cfg {
	char graph[PATH_MAX];
	char weights[PATH_MAX]; /* "" = seeded initialisation */
	uint64_t seed;
};

/* Everything the config file (docs/server.md) and the flags say. Defaults from srv_cfg_defaults. */
struct srv_cfg {
	char *eal[SRV_MAX_EAL_ARGS]; /* owned copies */
	int n_eal;
	struct dds_dp_cfg dp;        /* dp.devices points at `devices` */
	struct dds_dp_device *devices;
	uint32_t n_devices;
	struct srv_model_cfg models[SRV_MAX_MODELS];
	int n_models;
	enum dds_kernels kernels;
	int engine_threads;
	struct dds_pricing_cfg pricing;
};

void srv_cfg_defaults(struct srv_cfg *c);
/* Read a config file over the defaults. On error returns -1 with a message naming the file,
 * the key (as a path: "reassembly.timeout_ms") and the problem; c may be half-filled then and
 * must still be released with srv_cfg_free(). */
int srv_cfg_load(struct srv_cfg *c, const char *path, char *err, size_t err_len);
/* Set one key from a command-line flag ("interface.ip", "10.0.0.1"); same errors. */
int srv_cfg_set(struct srv_cfg *c, const char *key, const char *value, char *err, size_t err_len);
/* Checks across keys, after the file and the flags: -1 with err naming the key. */
int srv_cfg_check(const struct srv_cfg *c, char *err, size_t err_len);
void srv_cfg_free(struct srv_cfg *c);

/* The models and their executor (the CPU engine, synchronously on the rx lcore for now). */
struct srv_exec;
struct srv_exec *srv_exec_new(const struct srv_cfg *c, char *err, size_t err_len);
void srv_exec_free(struct srv_exec *x);
/* Fill ops for dds_dp_create(); x must outlive the dataplane. */
void srv_exec_ops(struct srv_exec *x, struct dds_dp_ops *ops);
int srv_exec_n_models(const struct srv_exec *x);
const struct dds_model *srv_exec_model(const struct srv_exec *x, int i);
/* The market (pricing/): read by telemetry, written by queue 0's lcore. */
const struct dds_pricing *srv_exec_market(const struct srv_exec *x);

/* Telemetry commands under /dds/ over the running dataplane. Returns 0 or -1 with err. */
int srv_telemetry_register(struct dds_dp *dp, const struct srv_cfg *c, struct srv_exec *x,
			   char *err, size_t err_len);
/* Make the commands fail from now on: call before freeing the dataplane. */
void srv_telemetry_detach(void);

#endif
