/* worker.c: the compute worker: one thread that takes complete requests off a ring, schedules them (dds_sched) and runs batches on the backend. */
#define _GNU_SOURCE /* sem_clockwait, pthread_setname_np */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "dds_backend.h"
#include "srv_int.h"

#define WK_RING_SIZE 8192        /* jobs waiting to be admitted, all rx queues */
#define WK_BURST 64              /* jobs taken off the ring at once */
#define WK_MAX_SLEEP_NS 50000000 /* an idle worker looks at its stop flags this often */
#define WK_FAR_NS 1000000000000000ull /* "later than any deadline": makes every group eligible */
#define WK_PUBLISH_NS 1000000    /* a busy worker publishes its stats at most this often */

struct srv_worker {
	const struct srv_cfg *cfg;
	struct srv_exec *x;
	struct dds_sched *sched;
	struct dds_backend *backend;
	struct srv_groups *groups; /* splits, scheduler groups, plans */
	struct rte_ring *in;
	sem_t wake;              /* posted by a submit only while `sleeping` */
	bool sleeping;           /* the worker is (about to be) on `wake` (atomic) */
	pthread_t thread;
	bool started;
	volatile bool *stop;   /* the daemon's force_quit */
	volatile bool quit;    /* srv_worker_stop(): leave now */
	double ns_per_tsc;
	uint64_t stop_deadline; /* 0 until *stop is seen */
	double svc_ns;           /* mean compute time per request (EWMA), for BUSY's retry_ms */
	uint64_t poll_ns;        /* scheduler.worker_poll_us */
	uint64_t last_work;      /* when a job last came or a batch last ran */
	uint64_t last_pub;       /* when the stats were last published */
	pthread_mutex_t lock;    /* guards pub */
	struct srv_worker_stats pub;
	struct srv_worker_stats own; /* the thread's, copied to pub */
	uint64_t ring_full;      /* submits refused (any rx lcore; atomic) */
};

static uint64_t wk_now(const struct srv_worker *w)
{
	return (uint64_t)((double)rte_rdtsc() * w->ns_per_tsc);
}

static void wk_log(void *arg, const char *line)
{
	(void)arg;
	RTE_LOG(INFO, USER1, "%s\n", line);
}

/* ---- jobs in and out ---- */

static void wk_finish(struct srv_worker *w, struct dds_dp_job *job, int verdict)
{
	job->verdict = verdict;
	if (verdict == DDS_DROP_EXEC_FAILED)
		w->own.exec_failed++;
	else if (verdict == DDS_DROP_SHUTTING_DOWN)
		w->own.refused_stop++;
	dds_dp_job_done(job);
}

/* When a device refused as busy may try again: the queue ahead at the mean service time. */
static uint32_t wk_retry_ms(const struct srv_worker *w)
{
	struct dds_sched_stats st;
	double ms;

	dds_sched_get_stats(w->sched, &st);
	ms = ceil((double)(st.queued + st.running) * w->svc_ns / 1e6);
	return ms < 1 ? 1 : ms > 1000 ? 1000 : (uint32_t)ms;
}

/* A new job: its group, weight r_i = x / p and work w, then the scheduler's verdict. */
static void wk_admit(struct srv_worker *w, struct dds_dp_job *job, uint64_t now)
{
	struct dds_sched_req *r = &job->sr;
	int mi = srv_exec_find(w->x, job->rq.model_hash), g;
	struct dds_price_view pv;
	enum dds_sched_verdict v;
	double work;

	if (w->stop_deadline && now >= w->stop_deadline) {
		wk_finish(w, job, DDS_DROP_SHUTTING_DOWN);
		return;
	}
	if (mi < 0 || (g = srv_groups_admit(w->groups, mi, job->rq.tm, &work)) < 0) {
		wk_finish(w, job, DDS_DROP_EXEC_FAILED);
		return;
	}
	dds_pricing_read_price(srv_exec_market(w->x), &pv);
	r->device_id = job->rq.device_id;
	r->model_hash = job->rq.model_hash;
	r->split_id = (uint32_t)g;
	r->weight = job->rq.budget / pv.price;
	r->work = work;
	if (!(isfinite(r->weight) && r->weight > 0)) {
		wk_finish(w, job, DDS_DROP_BAD_VALUE);
		return;
	}
	v = dds_sched_enqueue(w->sched, r, now);
	if (v == DDS_SCHED_ok)
		return;
	if (dds_sched_verdict_is_busy(v)) {
		job->retry_ms = wk_retry_ms(w);
		wk_finish(w, job, DDS_DP_BUSY);
	} else {
		RTE_LOG(ERR, USER1, "worker: request %lu of device %u: scheduler: %s\n",
			(unsigned long)job->rq.request_id, job->rq.device_id,
			dds_sched_verdict_doc(v));
		wk_finish(w, job, v == DDS_SCHED_bad_weight ? DDS_DROP_BAD_VALUE
							     : DDS_DROP_EXEC_FAILED);
	}
}

/* ---- batches ---- */

/* Copy row i of the batch's output into job i's own result. */
static int wk_result(struct dds_dp_job *job, const struct dds_model *m, const float *row,
		     size_t floats)
{
	const struct dds_shape *os = dds_model_value_shape(m, m->output + 1);

	job->out = malloc(floats * sizeof(float));
	if (!job->out)
		return DDS_DROP_EXEC_FAILED;
	memcpy(job->out, row, floats * sizeof(float));
	job->out_len = (uint32_t)(floats * sizeof(float));
	memset(&job->out_t, 0, sizeof(job->out_t));
	job->out_t.value_id = (uint16_t)(m->output + 1);
	job->out_t.dtype = DDS_DTYPE_F32;
	job->out_t.ndim = (uint8_t)os->ndim;
	for (int d = 0; d < os->ndim; d++)
		job->out_t.dim[d] = (uint32_t)os->d[d];
	return DDS_PROTO_OK;
}

static void wk_count_batch(struct srv_worker *w, int n)
{
	int b = 0;

	while (b < 8 && (1 << b) < n)
		b++;
	w->own.batch_hist[b]++;
}

/* Run one batch (groups.c) and hand every job back: a result each, or exec_failed for all. */
static void wk_run(struct srv_worker *w, struct dds_sched_batch *b)
{
	const struct dds_model *m = srv_exec_model(w->x, srv_groups_model(w->groups, b->split_id));
	size_t out_f = dds_shape_numel(&m->layers[m->output].out_shape);
	uint64_t t0 = wk_now(w), t1;
	struct dds_err err = {{0}};
	const float *out = NULL;
	int rc = srv_groups_run(w->groups, b, &out, &err);

	t1 = wk_now(w);
	dds_sched_complete(w->sched, b, t1);
	if (rc != 0)
		RTE_LOG(ERR, USER1, "worker: %s: batch of %d failed: %s\n", m->name, b->n,
			err.msg[0] ? err.msg : "no plan, or a payload of the wrong size");
	w->svc_ns = 0.9 * w->svc_ns + 0.1 * (double)(t1 - t0) / b->n;
	wk_count_batch(w, b->n);
	for (int i = 0; i < b->n; i++) {
		struct dds_dp_job *job = b->req[i]->user;

		wk_finish(w, job, rc ? DDS_DROP_EXEC_FAILED
				     : wk_result(job, m, out + out_f * (size_t)i, out_f));
	}
}

/* Every queued job refused with shutting_down (the grace period is over). */
static void wk_refuse_queued(struct srv_worker *w, uint64_t now)
{
	struct dds_sched_batch b;

	while (dds_sched_next_batch(w->sched, now + WK_FAR_NS, &b, NULL) > 0) {
		dds_sched_complete(w->sched, &b, now);
		for (int i = 0; i < b.n; i++)
			wk_finish(w, b.req[i]->user, DDS_DROP_SHUTTING_DOWN);
	}
}

static void wk_publish(struct srv_worker *w, uint64_t now)
{
	w->last_pub = now;
	dds_sched_get_stats(w->sched, &w->own.sched);
	pthread_mutex_lock(&w->lock);
	w->pub = w->own;
	pthread_mutex_unlock(&w->lock);
}

/* Sleep until a job is posted or until wake_ns (our clock), at most WK_MAX_SLEEP_NS. The
 * flag tells submitters to post; it is raised before the ring is looked at again, and a
 * submitter looks at it after its enqueue (both with full fences), so a job is never left on
 * the ring of a sleeping worker, and a worker that is awake costs a submitter no syscall. */
static void wk_sleep(struct srv_worker *w, uint64_t now, uint64_t wake_ns)
{
	uint64_t d = wake_ns > now ? wake_ns - now : 0;
	struct timespec ts;

	if (d == 0)
		return;
	if (d > WK_MAX_SLEEP_NS)
		d = WK_MAX_SLEEP_NS;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)(d % 1000000000);
	ts.tv_sec += (time_t)(d / 1000000000) + ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	__atomic_store_n(&w->sleeping, true, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (rte_ring_empty(w->in) && !w->quit)
		while (sem_clockwait(&w->wake, CLOCK_MONOTONIC, &ts) && errno == EINTR)
			;
	__atomic_store_n(&w->sleeping, false, __ATOMIC_RELAXED);
}

/* One pass, the same in both modes: admit what came, refuse what is queued once the stop
 * grace is over, run one eligible batch. True if there was work; *now: the pass's clock;
 * *wake: when the next queued batch is due (UINT64_MAX: none). */
static bool wk_step(struct srv_worker *w, uint64_t *now, uint64_t *wake)
{
	struct dds_dp_job *jobs[WK_BURST];
	/* the clock after the dequeue: a job's `queued` is never before its `complete` */
	unsigned n = rte_ring_sc_dequeue_burst(w->in, (void **)jobs, WK_BURST, NULL);
	struct dds_sched_batch b;

	*now = wk_now(w);
	*wake = UINT64_MAX;
	if (*w->stop && !w->stop_deadline)
		w->stop_deadline = *now + w->cfg->stop_grace_ns + 1;
	for (unsigned i = 0; i < n; i++)
		wk_admit(w, jobs[i], *now);
	if (w->quit || (w->stop_deadline && *now >= w->stop_deadline))
		wk_refuse_queued(w, *now);
	if (dds_sched_next_batch(w->sched, *now, &b, wake) > 0) {
		wk_run(w, &b);
		w->last_work = wk_now(w);
		return true;
	}
	if (n)
		w->last_work = *now;
	return n > 0;
}

/* The thread: a pass while there is work; then poll scheduler.worker_poll_us after the last
 * work, then sleep until a job is posted or a batch is due. Stats are published when idle and
 * at most every WK_PUBLISH_NS while busy. On stop: keep serving for the grace period, then
 * refuse what is queued. */
static void *wk_main(void *arg)
{
	struct srv_worker *w = arg;

	for (;;) {
		uint64_t now, wake;

		if (wk_step(w, &now, &wake))
			continue;
		if (w->quit && rte_ring_empty(w->in))
			break;
		if (now - w->last_work < w->poll_ns) {
			if (w->last_pub < w->last_work || now - w->last_pub >= WK_PUBLISH_NS)
				wk_publish(w, now);
			rte_pause();
			continue;
		}
		wk_publish(w, now);
		if (w->stop_deadline && w->stop_deadline < wake)
			wake = w->stop_deadline;
		wk_sleep(w, now, wake);
	}
	wk_publish(w, wk_now(w));
	return NULL;
}

void srv_worker_step(struct srv_worker *w)
{
	uint64_t now, wake;

	wk_step(w, &now, &wake);
	if (now - w->last_pub >= WK_PUBLISH_NS)
		wk_publish(w, now);
}

/* ---- life cycle ---- */

struct srv_worker *srv_worker_new(const struct srv_cfg *c, struct srv_exec *x,
				  volatile bool *stop, char *err, size_t n)
{
	struct dds_backend_opts bo = {.name = srv_backend_names[c->backend],
				      .cpu_threads = c->engine_threads,
				      .cpu_reference = c->reference_kernels,
				      .log = wk_log};
	struct srv_worker *w = calloc(1, sizeof(*w));
	struct dds_err e = {{0}};

	if (!w) {
		snprintf(err, n, "worker: out of memory");
		return NULL;
	}
	w->cfg = c;
	w->x = x;
	w->stop = stop;
	w->ns_per_tsc = 1e9 / (double)rte_get_tsc_hz();
	w->poll_ns = (uint64_t)c->worker_poll_us * 1000;
	pthread_mutex_init(&w->lock, NULL);
	sem_init(&w->wake, 0, 0);
	w->sched = dds_sched_create(&c->sched, err, n);
	if (!w->sched)
		goto fail;
	w->in = rte_ring_create("dds_jobs", WK_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (!w->in) {
		snprintf(err, n, "worker: out of memory (job ring)");
		goto fail;
	}
	w->backend = dds_backend_create(&bo, NULL, &e);
	if (!w->backend) {
		snprintf(err, n, "engine.backend: %s", e.msg);
		goto fail;
	}
	w->groups = srv_groups_new(c, x, w->sched, w->backend, &w->own.grp);
	if (!w->groups) {
		snprintf(err, n, "worker: out of memory (group table)");
		goto fail;
	}
	w->own.backend = dds_backend_name(w->backend);
	w->pub = w->own;
	return w;
fail:
	srv_worker_free(w);
	return NULL;
}

/* The CPUs the worker may run on: scheduler.worker_cpu alone when set; else every CPU of the
 * machine but those of the polling rx lcores (the worker lcores; the main lcore when it runs
 * the only queue), so that a sleeping worker's wake-up never waits for a polling loop's time
 * slice; all of them if none is left. */
static void wk_cpus(const struct srv_cfg *c, cpu_set_t *set)
{
	cpu_set_t rx;
	unsigned lcore;

	if (c->worker_cpu >= 0) {
		CPU_ZERO(set);
		CPU_SET(c->worker_cpu, set);
		return;
	}
	CPU_ZERO(&rx);
	if (rte_lcore_count() == 1) {
		rx = rte_lcore_cpuset(rte_get_main_lcore());
	} else {
		RTE_LCORE_FOREACH_WORKER(lcore) {
			cpu_set_t one = rte_lcore_cpuset(lcore);

			CPU_OR(&rx, &rx, &one);
		}
	}
	CPU_ZERO(set);
	for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; c++)
		if (!CPU_ISSET(c, &rx))
			CPU_SET(c, set);
	if (CPU_COUNT(set) == 0)
		for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; c++)
			CPU_SET(c, set);
}

/* The thread's attributes: its CPUs, and SCHED_FIFO at scheduler.worker_priority if set. */
static void wk_attr(const struct srv_cfg *c, pthread_attr_t *attr)
{
	struct sched_param sp = {.sched_priority = c->worker_priority};
	cpu_set_t cpus;

	wk_cpus(c, &cpus);
	pthread_attr_init(attr);
	pthread_attr_setaffinity_np(attr, sizeof(cpus), &cpus);
	if (c->worker_priority > 0) {
		pthread_attr_setinheritsched(attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(attr, SCHED_FIFO);
		pthread_attr_setschedparam(attr, &sp);
	}
}

/* What telemetry says of how the worker runs; set before its thread exists (or after it failed). */
static void wk_set_mode(struct srv_worker *w, const char *mode)
{
	pthread_mutex_lock(&w->lock);
	w->own.mode = w->pub.mode = mode;
	pthread_mutex_unlock(&w->lock);
}

/* On failure the error names the key that asked for what could not be had. */
int srv_worker_start(struct srv_worker *w, char *err, size_t n)
{
	const struct srv_cfg *c = w->cfg;
	pthread_attr_t attr;
	int rc;

	if (c->worker_inline) {
		wk_set_mode(w, "inline");
		w->started = true; /* queue 0's lcore runs srv_worker_step() */
		return 0;
	}
	wk_set_mode(w, "thread");
	wk_attr(c, &attr);
	rc = pthread_create(&w->thread, &attr, wk_main, w);
	pthread_attr_destroy(&attr);
	if (rc == EPERM && c->worker_priority > 0)
		snprintf(err, n, "scheduler.worker_priority: SCHED_FIFO priority %d not allowed: %s "
			 "(needs root or CAP_SYS_NICE)", c->worker_priority, strerror(rc));
	else if (rc && c->worker_cpu >= 0)
		snprintf(err, n, "scheduler.worker_cpu: cannot run the worker on CPU %d: %s",
			 c->worker_cpu, strerror(rc));
	else if (rc)
		snprintf(err, n, "worker thread: %s", strerror(rc));
	if (rc) {
		wk_set_mode(w, NULL);
		return -1;
	}
	pthread_setname_np(w->thread, "dds-worker");
	w->started = true;
	return 0;
}

int srv_worker_submit(struct srv_worker *w, struct dds_dp_job *job)
{
	if (rte_ring_mp_enqueue(w->in, job)) {
		__atomic_fetch_add(&w->ring_full, 1, __ATOMIC_RELAXED);
		return -1;
	}
	/* see wk_sleep: only the submitter that lowers the flag posts */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->sleeping, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&w->sleeping, false, __ATOMIC_ACQ_REL))
		sem_post(&w->wake);
	return 0;
}

void srv_worker_stop(struct srv_worker *w)
{
	uint64_t now, wake;

	if (!w || !w->started)
		return;
	w->quit = true;
	if (w->cfg->worker_inline) { /* no thread: refuse what is still held, here */
		while (wk_step(w, &now, &wake))
			;
		wk_publish(w, now);
		w->started = false;
		return;
	}
	sem_post(&w->wake);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void srv_worker_free(struct srv_worker *w)
{
	if (!w)
		return;
	srv_worker_stop(w);
	srv_groups_free(w->groups); /* its plans before their backend */
	dds_backend_free(w->backend);
	rte_ring_free(w->in);
	dds_sched_free(w->sched);
	sem_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

const struct srv_groups *srv_worker_groups(const struct srv_worker *w)
{
	return w->groups;
}

void srv_worker_stats(struct srv_worker *w, struct srv_worker_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->pub;
	pthread_mutex_unlock(&w->lock);
	out->ring_full = __atomic_load_n(&w->ring_full, __ATOMIC_RELAXED);
}
