/* config.c: dds-server's JSON config (jansson): defaults, a table of every key, errors naming the key. */
#define _GNU_SOURCE /* CPU_SETSIZE */
#include <arpa/inet.h>
#include <jansson.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_int.h"

enum key_type { KT_U16, KT_U32, KT_U64, KT_INT, KT_BOOL, KT_DOUBLE, KT_IPV4, KT_PORT, KT_MS,
		KT_KERNELS, KT_BACKEND };

const char *const srv_backend_names[3] = {"auto", "cpu", "cuda"};

/* One scalar key "<section>.<name>" and where it lands in struct srv_cfg. */
struct key_spec {
	const char *section, *name;
	enum key_type type;
	size_t off;
	double lo, hi; /* numbers: inclusive range */
};

#define OFF(field) offsetof(struct srv_cfg, field)
static const struct key_spec keys[] = {
	{"interface", "port_id", KT_U16, OFF(dp.port_id), 0, 1023},
	{"interface", "ip", KT_IPV4, OFF(dp.iface.ip), 0, 0},
	{"interface", "udp_port", KT_PORT, OFF(dp.iface.udp_port), 1, 65535},
	{"interface", "mtu", KT_U32, OFF(dp.mtu), 576, 9600},
	{"interface", "promiscuous", KT_BOOL, OFF(dp.promiscuous), 0, 0},
	{"interface", "verify_udp_checksum", KT_BOOL, OFF(dp.iface.verify_udp_csum), 0, 0},
	{"interface", "tx_udp_checksum", KT_BOOL, OFF(dp.tx_udp_csum), 0, 0},
	{"interface", "rx_checksum_offload", KT_BOOL, OFF(dp.rx_csum_offload), 0, 0},
	{"dataplane", "rx_desc", KT_U16, OFF(dp.rx_desc), 32, 16384},
	{"dataplane", "tx_desc", KT_U16, OFF(dp.tx_desc), 32, 16384},
	{"dataplane", "burst", KT_U16, OFF(dp.burst), 1, 512},
	{"dataplane", "drain_us", KT_U32, OFF(dp.drain_us), 1, 1000000},
	{"dataplane", "mbufs", KT_U32, OFF(dp.n_mbufs), 1023, 16777216},
	{"dataplane", "mbuf_cache", KT_U32, OFF(dp.mbuf_cache), 0, 512},
	{"reassembly", "max_requests", KT_U32, OFF(dp.proto.max_slots), 1, 1048576},
	{"reassembly", "max_requests_per_device", KT_U32, OFF(dp.proto.max_slots_per_device), 1,
	 65535},
	{"reassembly", "max_bytes", KT_U64, OFF(dp.proto.max_bytes), 4096, 1099511627776.0},
	{"reassembly", "max_bytes_per_device", KT_U64, OFF(dp.proto.max_bytes_per_device), 4096,
	 1099511627776.0},
	{"reassembly", "max_payload", KT_U32, OFF(dp.proto.max_payload), 4, 1073741824},
	{"reassembly", "timeout_ms", KT_MS, OFF(dp.proto.timeout_ns), 1, 600000},
	{"reassembly", "accept_replays", KT_BOOL, OFF(dp.proto.accept_replays), 0, 0},
	{"engine", "kernels", KT_KERNELS, OFF(reference_kernels), 0, 0},
	{"engine", "threads", KT_INT, OFF(engine_threads), 0, 256},
	{"engine", "backend", KT_BACKEND, OFF(backend), 0, 0},
	{"scheduler", "max_queued_total", KT_U32, OFF(sched.max_queued_total), 1, 1048576},
	{"scheduler", "max_queued_per_device", KT_U32, OFF(sched.max_queued_per_device), 1,
	 1048576},
	{"scheduler", "max_devices", KT_U32, OFF(sched.max_devices), 1, 1048576},
	{"scheduler", "max_groups", KT_U32, OFF(sched.max_groups), 1, 65536},
	{"scheduler", "stop_grace_ms", KT_MS, OFF(stop_grace_ns), 0, 600000},
	{"scheduler", "busy_retry_ms", KT_U32, OFF(busy_retry_ms), 1, 60000},
	{"scheduler", "worker_poll_us", KT_U32, OFF(worker_poll_us), 0, 1000000},
	{"scheduler", "worker_cpu", KT_INT, OFF(worker_cpu), -1, CPU_SETSIZE - 1},
	{"scheduler", "worker_priority", KT_INT, OFF(worker_priority), 0, 99},
	{"scheduler", "inline", KT_BOOL, OFF(worker_inline), 0, 0},
	{"pricing", "capacity", KT_DOUBLE, OFF(pricing.capacity), 1e-300, 1e300},
	{"pricing", "base_price", KT_DOUBLE, OFF(pricing.base_price), 1e-300, 1e300},
	{"pricing", "budget_cap", KT_DOUBLE, OFF(pricing.budget_cap), 1e-300, 1e300},
	{"pricing", "max_devices", KT_U32, OFF(pricing.max_devices), 1, DDS_PRICING_MAX_DEVICES},
	{"pricing", "expire_rounds", KT_U32, OFF(pricing.expire_rounds), 1, 1000000},
	{"pricing", "round_ms", KT_MS, OFF(pricing.round_ns), 1, 3600000},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

void srv_cfg_defaults(struct srv_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->dp.iface.udp_port = htons(9000);
	c->dp.iface.verify_udp_csum = true;
	c->dp.mtu = 1500;
	c->dp.promiscuous = true;
	c->dp.tx_udp_csum = true;
	c->dp.rx_csum_offload = true;
	c->dp.rx_desc = 1024;
	c->dp.tx_desc = 1024;
	c->dp.burst = 32;
	c->dp.drain_us = 100;
	c->dp.n_mbufs = 8191;
	c->dp.mbuf_cache = 256;
	c->dp.proto.role = DDS_ROLE_NODE;
	c->dp.proto.max_slots = 1024;
	c->dp.proto.max_slots_per_device = 8;
	c->dp.proto.max_bytes = 256ull << 20;
	c->dp.proto.max_bytes_per_device = 32ull << 20;
	c->dp.proto.max_payload = 16u << 20;
	c->dp.proto.timeout_ns = 500ull * 1000000;
	c->engine_threads = 1;
	c->backend = SRV_BACKEND_AUTO;
	c->sched = (struct dds_sched_config){.max_queued_total = 1024,
					     .max_queued_per_device = 64,
					     .max_devices = 1024,
					     .max_groups = 256};
	c->stop_grace_ns = 2000ull * 1000000;
	c->busy_retry_ms = 10;
	c->worker_poll_us = 50;
	c->worker_cpu = -1;
	dds_pricing_cfg_default(&c->pricing);
}

void srv_cfg_free(struct srv_cfg *c)
{
	for (int i = 0; i < c->n_eal; i++)
		free(c->eal[i]);
	free(c->devices);
	c->n_eal = 0;
	c->devices = NULL;
}

#define KFAIL(...) (snprintf(err, n, __VA_ARGS__), -1)

static int set_number(struct srv_cfg *c, const struct key_spec *k, json_t *v, const char *path,
		      char *err, size_t n)
{
	char *dst = (char *)c + k->off;
	bool integral = k->type != KT_DOUBLE;
	double x;

	if (integral ? !json_is_integer(v) : !json_is_number(v))
		return KFAIL("%s: must be %s in %g..%g", path, integral ? "an integer" : "a number",
			     k->lo, k->hi);
	x = integral ? (double)json_integer_value(v) : json_number_value(v);
	if (!(x >= k->lo && x <= k->hi))
		return KFAIL("%s: %g is out of range %g..%g", path, x, k->lo, k->hi);
	switch (k->type) {
	case KT_U16: *(uint16_t *)dst = (uint16_t)x; break;
	case KT_U32: *(uint32_t *)dst = (uint32_t)x; break;
	case KT_U64: *(uint64_t *)dst = (uint64_t)json_integer_value(v); break;
	case KT_INT: *(int *)dst = (int)x; break;
	case KT_PORT: *(uint16_t *)dst = htons((uint16_t)x); break;
	case KT_MS: *(uint64_t *)dst = (uint64_t)x * 1000000; break;
	default: *(double *)dst = x; break;
	}
	return 0;
}

static int set_key(struct srv_cfg *c, const struct key_spec *k, json_t *v, const char *path,
		   char *err, size_t n)
{
	char *dst = (char *)c + k->off;
	struct in_addr a;

	switch (k->type) {
	case KT_BOOL:
		if (!json_is_boolean(v))
			return KFAIL("%s: must be true or false", path);
		*(bool *)dst = json_is_true(v);
		return 0;
	case KT_IPV4:
		if (!json_is_string(v) || inet_pton(AF_INET, json_string_value(v), &a) != 1)
			return KFAIL("%s: must be an IPv4 address as a string (\"10.0.0.1\")", path);
		memcpy(dst, &a.s_addr, 4);
		return 0;
	case KT_KERNELS:
		if (json_is_string(v) && !strcmp(json_string_value(v), "fast"))
			*(bool *)dst = false;
		else if (json_is_string(v) && !strcmp(json_string_value(v), "reference"))
			*(bool *)dst = true;
		else
			return KFAIL("%s: must be \"fast\" or \"reference\"", path);
		return 0;
	case KT_BACKEND:
		for (int i = 0; i < 3; i++)
			if (json_is_string(v) && !strcmp(json_string_value(v), srv_backend_names[i])) {
				*(enum srv_backend *)dst = (enum srv_backend)i;
				return 0;
			}
		return KFAIL("%s: must be \"auto\", \"cpu\" or \"cuda\"", path);
	default:
		return set_number(c, k, v, path, err, n);
	}
}

static const struct key_spec *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int load_section(struct srv_cfg *c, const char *section, json_t *obj, char *err, size_t n)
{
	const char *name;
	json_t *v;
	char path[128];

	if (!json_is_object(obj))
		return KFAIL("%s: must be an object", section);
	json_object_foreach(obj, name, v) {
		const struct key_spec *k = find_key(section, name);

		snprintf(path, sizeof(path), "%s.%s", section, name);
		if (!k)
			return KFAIL("%s: unknown key (docs/server.md lists them all)", path);
		if (set_key(c, k, v, path, err, n))
			return -1;
	}
	return 0;
}

static int load_eal(struct srv_cfg *c, json_t *arr, char *err, size_t n)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return KFAIL("eal: must be an array of strings");
	if (json_array_size(arr) > SRV_MAX_EAL_ARGS - 8)
		return KFAIL("eal: at most %d arguments", SRV_MAX_EAL_ARGS - 8);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return KFAIL("eal[%zu]: must be a string", i);
		c->eal[c->n_eal++] = strdup(json_string_value(v));
	}
	return 0;
}

static int load_device(struct srv_cfg *c, size_t i, json_t *d, char *err, size_t n)
{
	struct dds_dp_device *dev = &c->devices[i];
	json_t *id = json_object_get(d, "id"), *key = json_object_get(d, "key");
	const char *name;
	json_t *v;

	if (!json_is_object(d))
		return KFAIL("devices[%zu]: must be an object {\"id\": ..., \"key\": ...}", i);
	json_object_foreach(d, name, v)
		if (strcmp(name, "id") && strcmp(name, "key"))
			return KFAIL("devices[%zu].%s: unknown key", i, name);
	if (!json_is_integer(id) || json_integer_value(id) < 0 ||
	    json_integer_value(id) > UINT32_MAX)
		return KFAIL("devices[%zu].id: must be an integer in 0..4294967295", i);
	dev->id = (uint32_t)json_integer_value(id);
	if (!json_is_string(key) ||
	    dds_proto_key_parse(json_string_value(key), json_string_length(key), dev->key))
		return KFAIL("devices[%zu].key: must be a string of %d hex digits (%d bytes)", i,
			     2 * DDS_PROTO_KEY_LEN, DDS_PROTO_KEY_LEN);
	for (size_t j = 0; j < i; j++)
		if (c->devices[j].id == dev->id)
			return KFAIL("devices[%zu].id: %u is also devices[%zu]", i, dev->id, j);
	return 0;
}

static int load_devices(struct srv_cfg *c, json_t *arr, char *err, size_t n)
{
	size_t i;
	json_t *d;

	if (!json_is_array(arr))
		return KFAIL("devices: must be an array of {\"id\", \"key\"} objects");
	free(c->devices);
	c->devices = calloc(json_array_size(arr) + 1, sizeof(*c->devices));
	if (!c->devices)
		return KFAIL("devices: out of memory");
	json_array_foreach(arr, i, d) {
		if (load_device(c, i, d, err, n))
			return -1;
		c->n_devices = (uint32_t)i + 1;
	}
	return 0;
}

/* A path from the config file, relative to the file's folder unless absolute. */
static int copy_path(char *dst, const char *path, const char *cfg_dir)
{
	int len = path[0] == '/' || !cfg_dir[0] ? snprintf(dst, PATH_MAX, "%s", path)
						 : snprintf(dst, PATH_MAX, "%s/%s", cfg_dir, path);

	return len < 0 || len >= PATH_MAX ? -1 : 0;
}

/* models[i].merge_at: a non-empty array of layer names (checked against the graph later). */
static int load_merge_at(struct srv_model_cfg *m, size_t i, json_t *arr, char *err, size_t n)
{
	size_t j;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > SRV_MAX_MERGE)
		return KFAIL("models[%zu].merge_at: must be an array of 1..%d layer names", i,
			     SRV_MAX_MERGE);
	json_array_foreach(arr, j, v) {
		if (!json_is_string(v) || json_string_length(v) >= DDS_NAME_MAX)
			return KFAIL("models[%zu].merge_at[%zu]: must be a layer name (a string of "
				     "at most %d bytes)", i, j, DDS_NAME_MAX - 1);
		snprintf(m->merge_at[j], DDS_NAME_MAX, "%s", json_string_value(v));
		m->n_merge = (int)j + 1;
	}
	return 0;
}

static int load_model(struct srv_model_cfg *m, size_t i, json_t *o, const char *dir, char *err,
		      size_t n)
{
	json_t *g = json_object_get(o, "graph"), *w = json_object_get(o, "weights");
	json_t *seed = json_object_get(o, "seed"), *mb = json_object_get(o, "max_batch");
	json_t *md = json_object_get(o, "max_delay_us"), *ma = json_object_get(o, "merge_at");
	const char *name;
	json_t *v;

	if (!json_is_object(o))
		return KFAIL("models[%zu]: must be an object {\"graph\": ...}", i);
	json_object_foreach(o, name, v)
		if (strcmp(name, "graph") && strcmp(name, "weights") && strcmp(name, "seed") &&
		    strcmp(name, "max_batch") && strcmp(name, "max_delay_us") &&
		    strcmp(name, "merge_at"))
			return KFAIL("models[%zu].%s: unknown key", i, name);
	if (ma && load_merge_at(m, i, ma, err, n))
		return -1;
	if (mb && (!json_is_integer(mb) || json_integer_value(mb) < 1 ||
		   json_integer_value(mb) > DDS_SCHED_MAX_BATCH))
		return KFAIL("models[%zu].max_batch: must be an integer in 1..%d", i,
			     DDS_SCHED_MAX_BATCH);
	if (md && (!json_is_integer(md) || json_integer_value(md) < 0 ||
		   json_integer_value(md) > 1000000))
		return KFAIL("models[%zu].max_delay_us: must be an integer in 0..1000000", i);
	m->batch.max_batch = mb ? (int)json_integer_value(mb) : 8;
	m->batch.max_delay_ns = md ? (uint64_t)json_integer_value(md) * 1000 : 0;
	if (!json_is_string(g) || copy_path(m->graph, json_string_value(g), dir))
		return KFAIL("models[%zu].graph: must be the path of a model JSON file", i);
	if (w && !json_is_null(w) &&
	    (!json_is_string(w) || copy_path(m->weights, json_string_value(w), dir)))
		return KFAIL("models[%zu].weights: must be a path or null", i);
	if (seed && (!json_is_integer(seed) || json_integer_value(seed) < 0))
		return KFAIL("models[%zu].seed: must be an integer >= 0", i);
	m->seed = seed ? (uint64_t)json_integer_value(seed) : 1;
	return 0;
}

static int load_models(struct srv_cfg *c, json_t *arr, const char *dir, char *err, size_t n)
{
	size_t i;
	json_t *o;

	if (!json_is_array(arr) || json_array_size(arr) > SRV_MAX_MODELS)
		return KFAIL("models: must be an array of at most %d models", SRV_MAX_MODELS);
	json_array_foreach(arr, i, o) {
		if (load_model(&c->models[i], i, o, dir, err, n))
			return -1;
		c->n_models = (int)i + 1;
	}
	return 0;
}

static int load_top(struct srv_cfg *c, json_t *root, const char *dir, char *err, size_t n)
{
	const char *name;
	json_t *v;

	if (!json_is_object(root))
		return KFAIL("the top level must be an object");
	json_object_foreach(root, name, v) {
		int rc;

		if (!strcmp(name, "eal"))
			rc = load_eal(c, v, err, n);
		else if (!strcmp(name, "devices"))
			rc = load_devices(c, v, err, n);
		else if (!strcmp(name, "models"))
			rc = load_models(c, v, dir, err, n);
		else if (!strcmp(name, "interface") || !strcmp(name, "dataplane") ||
			 !strcmp(name, "reassembly") || !strcmp(name, "engine") ||
			 !strcmp(name, "pricing") || !strcmp(name, "scheduler"))
			rc = load_section(c, name, v, err, n);
		else
			rc = KFAIL("%s: unknown key (docs/server.md lists them all)", name);
		if (rc)
			return -1;
	}
	return 0;
}

int srv_cfg_load(struct srv_cfg *c, const char *path, char *err, size_t n)
{
	char dir[PATH_MAX], msg[512];
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	const char *slash = strrchr(path, '/');
	int rc;

	if (!root)
		return KFAIL("%s:%d:%d: %s", path, je.line, je.column, je.text);
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
	rc = load_top(c, root, dir, msg, sizeof(msg));
	json_decref(root);
	if (rc)
		return KFAIL("%s: %s", path, msg);
	c->dp.devices = c->devices;
	c->dp.n_devices = c->n_devices;
	return 0;
}

int srv_cfg_set(struct srv_cfg *c, const char *key, const char *value, char *err, size_t n)
{
	char section[64];
	const char *dot = strchr(key, '.');
	const struct key_spec *k;
	json_t *v;
	int rc;

	snprintf(section, sizeof(section), "%.*s", dot ? (int)(dot - key) : 0, key);
	k = dot ? find_key(section, dot + 1) : NULL;
	if (!k)
		return KFAIL("%s: unknown key (docs/server.md lists them all)", key);
	v = json_loads(value, JSON_DECODE_ANY, NULL);
	if (!v || k->type == KT_IPV4 || k->type == KT_KERNELS || k->type == KT_BACKEND) {
		json_decref(v);
		v = json_string(value);
	}
	rc = set_key(c, k, v, key, err, n);
	json_decref(v);
	return rc;
}

int srv_cfg_check(const struct srv_cfg *c, char *err, size_t n)
{
	const struct dds_proto_rx_config *p = &c->dp.proto;

	if (c->dp.iface.ip == 0)
		return KFAIL("interface.ip: required (the address the node answers on)");
	if (p->max_slots_per_device > p->max_slots)
		return KFAIL("reassembly.max_requests_per_device: %u is above "
			     "reassembly.max_requests (%u)", p->max_slots_per_device, p->max_slots);
	if (p->max_bytes_per_device > p->max_bytes)
		return KFAIL("reassembly.max_bytes_per_device: above reassembly.max_bytes");
	if (p->max_payload > p->max_bytes_per_device)
		return KFAIL("reassembly.max_payload: %u is above reassembly.max_bytes_per_device "
			     "(no request that large could ever be held)", p->max_payload);
	if (c->n_models == 0)
		return KFAIL("models: at least one model is needed");
	if (c->sched.max_queued_per_device > c->sched.max_queued_total)
		return KFAIL("scheduler.max_queued_per_device: %u is above "
			     "scheduler.max_queued_total (%u)", c->sched.max_queued_per_device,
			     c->sched.max_queued_total);
	if (c->worker_cpu >= 0 && c->worker_cpu >= sysconf(_SC_NPROCESSORS_CONF))
		return KFAIL("scheduler.worker_cpu: CPU %d does not exist (this machine has %ld)",
			     c->worker_cpu, sysconf(_SC_NPROCESSORS_CONF));
	if (c->worker_inline && c->worker_cpu >= 0)
		return KFAIL("scheduler.worker_cpu: no worker thread with scheduler.inline (queue "
			     "0's lcore computes; place it with the EAL's -l)");
	if (c->worker_inline && c->worker_priority > 0)
		return KFAIL("scheduler.worker_priority: no worker thread with scheduler.inline");
	return 0;
}
