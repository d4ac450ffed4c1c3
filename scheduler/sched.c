/* sched.c: groups, admission, SFQ tags, dynamic batching and dispatch (see dds_sched.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched_int.h"

static const char *const stage_names[] = {
#define STAGE_NAME(name, doc) #name,
	DDS_STAGE_LIST(STAGE_NAME)
#undef STAGE_NAME
};

static const char *const verdict_names[] = {
#define VERDICT_NAME(name, doc) #name,
	DDS_SCHED_VERDICT_LIST(VERDICT_NAME)
#undef VERDICT_NAME
};

static const char *const verdict_docs[] = {
#define VERDICT_DOC(name, doc) doc,
	DDS_SCHED_VERDICT_LIST(VERDICT_DOC)
#undef VERDICT_DOC
};

const char *dds_stage_name(int stage)
{
	return stage >= 0 && stage < DDS_STAGE__COUNT ? stage_names[stage] : NULL;
}

const char *dds_sched_verdict_name(int v)
{
	return v >= 0 && v < DDS_SCHED_VERDICT__COUNT ? verdict_names[v] : NULL;
}

const char *dds_sched_verdict_doc(int v)
{
	return v >= 0 && v < DDS_SCHED_VERDICT__COUNT ? verdict_docs[v] : NULL;
}

static void errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t len, const char *fmt, ...)
{
	if (err && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
}

struct dds_sched *dds_sched_create(const struct dds_sched_config *c, char *err, size_t err_len)
{
	if (!c || !c->max_queued_total || !c->max_queued_per_device || !c->max_devices ||
	    !c->max_groups || c->max_devices > (1u << 28) || c->max_groups > (1u << 16)) {
		errf(err, err_len, "scheduler: bad config: max_queued_total, max_queued_per_device, "
				   "max_devices (<= 2^28) and max_groups (<= 65536) must be >= 1");
		return NULL;
	}
	struct dds_sched *s = calloc(1, sizeof(*s));
	if (!s || !(s->groups = calloc(c->max_groups, sizeof(*s->groups))) ||
	    sched_devices_init(&s->dev, c->max_devices)) {
		errf(err, err_len, "scheduler: out of memory for %u devices and %u groups",
		     c->max_devices, c->max_groups);
		dds_sched_free(s);
		return NULL;
	}
	s->c = *c;
	return s;
}

void dds_sched_free(struct dds_sched *s)
{
	if (!s)
		return;
	for (uint32_t g = 0; g < s->n_groups; g++)
		sched_heap_free(&s->groups[g].heap);
	free(s->groups);
	sched_devices_free(&s->dev);
	free(s);
}

static int group_find(const struct dds_sched *s, uint64_t model_hash, uint32_t split_id)
{
	for (uint32_t g = 0; g < s->n_groups; g++)
		if (s->groups[g].model_hash == model_hash && s->groups[g].split_id == split_id)
			return (int)g;
	return -1;
}

int dds_sched_add_group(struct dds_sched *s, uint64_t model_hash, uint32_t split_id,
			const struct dds_sched_group_opts *o, char *err, size_t err_len)
{
	if (!s || !o || o->max_batch < 1 || o->max_batch > DDS_SCHED_MAX_BATCH) {
		errf(err, err_len, "scheduler: group: max_batch must be in [1, %d]",
		     DDS_SCHED_MAX_BATCH);
		return -1;
	}
	if (group_find(s, model_hash, split_id) >= 0) {
		errf(err, err_len, "scheduler: group (model %016llx, split %u) already exists",
		     (unsigned long long)model_hash, split_id);
		return -1;
	}
	if (s->n_groups == s->c.max_groups) {
		errf(err, err_len, "scheduler: more than max_groups (%u) groups", s->c.max_groups);
		return -1;
	}
	struct sched_group *g = &s->groups[s->n_groups];
	if (sched_heap_init(&g->heap, s->c.max_queued_total)) {
		errf(err, err_len, "scheduler: out of memory for a group");
		return -1;
	}
	g->model_hash = model_hash;
	g->split_id = split_id;
	g->o = *o;
	return (int)s->n_groups++;
}

/* The verdict on a request before any state changes; on ok, *gi and *di are its group and
 * device record (the record is created here for a new device). */
static enum dds_sched_verdict admit(struct dds_sched *s, const struct dds_sched_req *r, int *gi,
				    uint32_t *di)
{
	if (!r || r->sched.linked)
		return DDS_SCHED_bad_request;
	if (!isfinite(r->weight) || r->weight <= 0)
		return DDS_SCHED_bad_weight;
	if (!isfinite(r->work) || r->work <= 0)
		return DDS_SCHED_bad_work;
	if ((*gi = group_find(s, r->model_hash, r->split_id)) < 0)
		return DDS_SCHED_unknown_group;
	if (s->st.queued >= s->c.max_queued_total)
		return DDS_SCHED_busy_total;
	*di = sched_device_find(&s->dev, r->device_id);
	if (*di != SCHED_NONE)
		return s->dev.rec[*di].queued >= s->c.max_queued_per_device ? DDS_SCHED_busy_device
									     : DDS_SCHED_ok;
	*di = sched_device_add(&s->dev, r->device_id, s->vtime);
	return *di == SCHED_NONE ? DDS_SCHED_busy_devices : DDS_SCHED_ok;
}

enum dds_sched_verdict dds_sched_enqueue(struct dds_sched *s, struct dds_sched_req *r,
					 uint64_t now)
{
	int gi = -1;
	uint32_t di = SCHED_NONE;

	if (!s)
		return DDS_SCHED_bad_request;
	enum dds_sched_verdict v = admit(s, r, &gi, &di);
	s->st.verdicts[v]++;
	if (v != DDS_SCHED_ok)
		return v;

	struct sched_device *d = &s->dev.rec[di];
	struct sched_group *g = &s->groups[gi];
	r->sched.start = fmax(s->vtime, d->last_finish);
	r->sched.finish = r->sched.start + r->work / r->weight;
	r->sched.seq = s->seq++;
	r->sched.device_slot = di;
	r->sched.linked = true;
	r->t[DDS_STAGE_queued] = now;
	d->last_finish = r->sched.finish;
	d->queued++;
	s->max_finish = fmax(s->max_finish, r->sched.finish);
	s->st.queued++;

	r->sched.newer = NULL;
	r->sched.older = g->newest;
	if (g->newest)
		g->newest->sched.newer = r;
	else
		g->oldest = r;
	g->newest = r;
	sched_heap_push(&g->heap, r);
	return DDS_SCHED_ok;
}

/* When group g becomes eligible: now if it has a full batch, else when its oldest request has
 * waited max_delay_ns; UINT64_MAX if it is empty. */
static uint64_t group_ready_at(const struct sched_group *g)
{
	if (!g->heap.n)
		return UINT64_MAX;
	if (g->heap.n >= (uint32_t)g->o.max_batch)
		return 0;
	uint64_t q = g->oldest->t[DDS_STAGE_queued];
	return q > UINT64_MAX - g->o.max_delay_ns ? UINT64_MAX : q + g->o.max_delay_ns;
}

/* The eligible group whose smallest start tag is smallest (-1 if none); *wake is the earliest
 * time a group becomes eligible. */
static int pick_group(const struct dds_sched *s, uint64_t now, uint64_t *wake)
{
	int best = -1;

	*wake = UINT64_MAX;
	for (uint32_t gi = 0; gi < s->n_groups; gi++) {
		const struct sched_group *g = &s->groups[gi];
		uint64_t at = group_ready_at(g);
		*wake = at < *wake ? at : *wake;
		if (at > now)
			continue;
		if (best < 0 || sched_req_before(sched_heap_top(&g->heap),
						 sched_heap_top(&s->groups[best].heap)))
			best = (int)gi;
	}
	return best;
}

/* Take r out of its group's arrival list. */
static void unlink_arrival(struct sched_group *g, struct dds_sched_req *r)
{
	if (r->sched.older)
		r->sched.older->sched.newer = r->sched.newer;
	else
		g->oldest = r->sched.newer;
	if (r->sched.newer)
		r->sched.newer->sched.older = r->sched.older;
	else
		g->newest = r->sched.older;
}

int dds_sched_next_batch(struct dds_sched *s, uint64_t now, struct dds_sched_batch *b,
			 uint64_t *wake_ns)
{
	uint64_t wake = UINT64_MAX;
	int gi = s && b ? pick_group(s, now, &wake) : -1;

	if (wake_ns)
		*wake_ns = wake;
	if (b)
		b->n = 0;
	if (gi < 0)
		return 0;
	struct sched_group *g = &s->groups[gi];
	b->group = (uint32_t)gi;
	b->model_hash = g->model_hash;
	b->split_id = g->split_id;
	while (b->n < g->o.max_batch && g->heap.n) {
		struct dds_sched_req *r = sched_heap_pop(&g->heap);
		struct sched_device *d = &s->dev.rec[r->sched.device_slot];
		unlink_arrival(g, r);
		r->t[DDS_STAGE_batch_start] = now;
		d->queued--;
		d->running++;
		b->req[b->n++] = r;
	}
	s->vtime = fmax(s->vtime, b->req[0]->sched.start);
	s->st.queued -= (uint32_t)b->n;
	s->st.running += (uint32_t)b->n;
	s->st.dispatched += (uint64_t)b->n;
	s->st.batches++;
	return b->n;
}

void dds_sched_complete(struct dds_sched *s, struct dds_sched_batch *b, uint64_t now)
{
	if (!s || !b)
		return;
	for (int i = 0; i < b->n; i++) {
		struct dds_sched_req *r = b->req[i];
		if (!r || !r->sched.linked)
			continue;
		r->sched.linked = false;
		r->t[DDS_STAGE_compute_done] = now;
		s->dev.rec[r->sched.device_slot].running--;
		s->st.running--;
		s->st.completed++;
	}
	/* End of a busy period: V jumps to the largest finish tag handed out (SFQ). */
	if (!s->st.queued && !s->st.running)
		s->vtime = fmax(s->vtime, s->max_finish);
}

void dds_sched_get_stats(const struct dds_sched *s, struct dds_sched_stats *st)
{
	if (!s || !st)
		return;
	*st = s->st;
	st->devices = s->dev.used;
	st->vtime = s->vtime;
}
