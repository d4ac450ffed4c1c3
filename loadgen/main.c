/* main.c: dds-loadgen: N simulated devices with real DDS protocol traffic over kernel UDP or a DPDK port, or a pcap of it (docs/loadgen.md). */
#include "lg_int.h"

int main(int argc, char **argv)
{
	struct lg_opts o;
	struct lg_fleet f;
	struct lg_stats s;
	char err[512];
	int rc = lg_opts_parse(argc, argv, &o, err, sizeof(err));

	if (rc) {
		if (rc < 0)
			fprintf(stderr, "dds-loadgen: %s\n", err);
		else
			lg_opts_usage(stdout);
		lg_opts_free(&o);
		return rc < 0 ? 2 : 0;
	}
	if (!lg_fleet_new(&o, &f, err, sizeof(err)))
		err[0] = 0;
	if (err[0]) {
		fprintf(stderr, "dds-loadgen: %s\n", err);
		lg_opts_free(&o);
		return 2;
	}
	rc = lg_stats_init(&s, f.n_models, err, sizeof(err));
	if (!rc)
		rc = o.pcap_only ? lg_run_pcap_only(&f, &s, err, sizeof(err))
				 : lg_run_live(&f, &s, err, sizeof(err));
	if (!rc) {
		lg_report_text(stdout, &f, &s);
		if (o.json)
			rc = lg_report_json(o.json, &f, &s, err, sizeof(err));
	}
	if (rc)
		fprintf(stderr, "dds-loadgen: %s\n", err);
	lg_stats_free(&s);
	lg_fleet_free(&f);
	lg_opts_free(&o);
	return rc == -2 ? 2 : rc ? 1 : 0; /* -2: the I/O path's arguments (EAL, port) are wrong */
}
