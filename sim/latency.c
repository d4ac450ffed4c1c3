/* latency.c: one inference's latency and its three parts under each policy of Fig. 6. */
#include "sim_int.h"

#include <math.h>

const char *dds_sim_policy_name(enum dds_sim_policy pol)
{
	static const char *const names[DDS_SIM_POLICY__COUNT] = {
		[DDS_SIM_EO] = "EO",
		[DDS_SIM_SO] = "SO",
		[DDS_SIM_DADS] = "DADS",
		[DDS_SIM_DDS_MOMENTUM] = "DDS-momentum",
		[DDS_SIM_DDS_EXACT] = "DDS-exact",
	};

	return pol >= 0 && pol < DDS_SIM_POLICY__COUNT ? names[pol] : "?";
}

static void from_result(const struct dds_part_result *res, struct dds_sim_latency *out)
{
	*out = (struct dds_sim_latency){ .t_edge = res->split.t_edge,
					 .t_transfer = res->split.t_transfer,
					 .t_server = res->t_server, .total = res->total };
}

/* A DDS device at its budget x and the final price: the envelope's piece at r = x / p. */
static void dds_latency(const struct sim_dev *d, double x, double p, struct dds_sim_latency *out)
{
	double r = x / p;
	const struct dds_part_piece *pc = dds_part_envelope_lookup(d->env, r);

	if (x <= 0 || pc->w <= 0) { /* all-local: no server, whatever the piece's transfer */
		*out = (struct dds_sim_latency){ .t_edge = d->pub.t_local,
						 .total = d->pub.t_local };
		return;
	}
	*out = (struct dds_sim_latency){ .t_edge = pc->split.t_edge,
					 .t_transfer = pc->split.t_transfer,
					 .t_server = pc->w / r,
					 .total = pc->a + pc->w / r };
}

int dds_sim_device_latency(const struct dds_sim *sim, int i, int n, enum dds_sim_policy pol,
			   const struct dds_sim_run *run, struct dds_sim_latency *out, char *err,
			   size_t err_len)
{
	const struct sim_dev *d;
	struct dds_part_result res;
	struct dds_part_err pe;
	double r;
	int rc;

	if (n < 1 || n > sim->cfg.population || i < 0 || i >= n)
		return dds_fail(err, err_len, "latency: device %d of %d outside the population", i,
				n);
	d = &sim->dev[i];
	r = sim->cfg.capacity / n;
	switch (pol) {
	case DDS_SIM_EO:
		rc = dds_part_edge_only(d->ctx, r, &res, &pe);
		break;
	case DDS_SIM_SO:
		rc = dds_part_server_only(d->ctx, r, &res, &pe);
		break;
	case DDS_SIM_DADS:
		rc = dds_part_dads(d->ctx, r, &res, &pe);
		break;
	case DDS_SIM_DDS_MOMENTUM:
	case DDS_SIM_DDS_EXACT:
		if (!run || run->n != n)
			return dds_fail(err, err_len, "latency: DDS needs a run of %d devices", n);
		dds_latency(d, run->x[i], run->final_price, out);
		return 0;
	default:
		return dds_fail(err, err_len, "latency: unknown policy %d", (int)pol);
	}
	if (rc < 0)
		return dds_fail(err, err_len, "latency of device %d (%s): %s", i,
				dds_sim_policy_name(pol), pe.msg);
	from_result(&res, out);
	return 0;
}

int dds_sim_avg_latency(const struct dds_sim *sim, int n, enum dds_sim_policy pol,
			const struct dds_sim_run *run, struct dds_sim_latency *out, char *err,
			size_t err_len)
{
	struct dds_sim_latency s = { 0 };

	for (int i = 0; i < n; i++) {
		struct dds_sim_latency l;

		if (dds_sim_device_latency(sim, i, n, pol, run, &l, err, err_len) < 0)
			return -1;
		s.t_edge += l.t_edge;
		s.t_transfer += l.t_transfer;
		s.t_server += l.t_server;
		s.total += l.total;
	}
	*out = (struct dds_sim_latency){ .t_edge = s.t_edge / n, .t_transfer = s.t_transfer / n,
					 .t_server = s.t_server / n, .total = s.total / n };
	return 0;
}
