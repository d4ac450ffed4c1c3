/* pool.c: the engine's worker threads: a fixed team that runs one job at a time, waiting on
 * condition variables (never spinning, so a busy neighbour on a shared core slows a run down
 * in proportion instead of stalling it). */
#include <pthread.h>
#include <stdlib.h>

#include "engine_int.h"

struct dds_pool {
	int nt;           /* team size, the caller included */
	pthread_t *tid;   /* nt - 1 workers */
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	unsigned long gen; /* number of jobs posted */
	int pending;       /* workers still on the current job */
	bool quit;
	dds_pool_fn fn;
	void *arg;
};

struct worker_arg {
	struct dds_pool *p;
	int t;
};

static void *worker(void *a)
{
	struct dds_pool *p = ((struct worker_arg *)a)->p;
	int t = ((struct worker_arg *)a)->t;
	unsigned long seen = 0;

	free(a);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->gen == seen && !p->quit)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->quit)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		p->fn(p->arg, t, p->nt);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Start n - 1 workers of a pool of n; returns how many started (a short team on failure). */
static int start_workers(struct dds_pool *p, int n)
{
	for (int t = 1; t < n; t++) {
		struct worker_arg *a = malloc(sizeof(*a));
		if (!a)
			return t - 1;
		a->p = p;
		a->t = t;
		if (pthread_create(&p->tid[t - 1], NULL, worker, a)) {
			free(a);
			return t - 1;
		}
	}
	return n - 1;
}

struct dds_pool *dds_pool_create(int n)
{
	struct dds_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->tid = calloc((size_t)n, sizeof(*p->tid));
	if (!p->tid || pthread_mutex_init(&p->mu, NULL)) {
		free(p->tid);
		free(p);
		return NULL;
	}
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	p->nt = 1 + start_workers(p, n);
	if (p->nt < n) { /* could not start them all: stop those that did */
		dds_pool_free(p);
		return NULL;
	}
	return p;
}

void dds_pool_free(struct dds_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (int t = 0; t < p->nt - 1; t++)
		pthread_join(p->tid[t], NULL);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p->tid);
	free(p);
}

void dds_pool_run(struct dds_pool *p, dds_pool_fn fn, void *arg)
{
	if (!p || p->nt == 1) {
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->pending = p->nt - 1;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	fn(arg, 0, p->nt);
	pthread_mutex_lock(&p->mu);
	while (p->pending)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}
