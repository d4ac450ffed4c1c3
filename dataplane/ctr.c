/* ctr.c: the names and descriptions of the packet-path counters (telemetry keys, docs). */
#include "dds_dataplane.h"

#define CTR_NAME(name, doc) #name,
#define CTR_DOC(name, doc) doc,
static const char *const ctr_names[DDS_CTR__COUNT] = {DDS_CTR_LIST(CTR_NAME)};
static const char *const ctr_docs[DDS_CTR__COUNT] = {DDS_CTR_LIST(CTR_DOC)};

_Static_assert(sizeof(struct dds_counters) % 64 == 0, "counters fill whole cache lines");

const char *dds_ctr_name(enum dds_ctr c)
{
	return (unsigned)c < DDS_CTR__COUNT ? ctr_names[c] : NULL;
}

const char *dds_ctr_doc(enum dds_ctr c)
{
	return (unsigned)c < DDS_CTR__COUNT ? ctr_docs[c] : NULL;
}
