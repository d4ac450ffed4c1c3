/* dgram_check.c: checks datagrams extracted from a pcap with the protocol library: each parses (dds_proto_parse) and its MAC verifies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds_proto.h"

/* usage: lg_dgram_check RECORDS KEYHEX. RECORDS: [u32 little-endian length][datagram] ...
 * Prints "ok N register R request Q fragments F" or the first failure; exit 0 if all pass. */
int main(int argc, char **argv)
{
	static uint8_t d[65536];
	uint8_t key[DDS_PROTO_KEY_LEN];
	unsigned long n = 0, reg = 0, req = 0, frag = 0;
	FILE *f = argc == 3 ? fopen(argv[1], "rb") : NULL;
	uint32_t len;

	if (!f || dds_proto_key_parse(argv[2], strlen(argv[2]), key)) {
		fprintf(stderr, "usage: lg_dgram_check RECORDS KEYHEX64\n");
		return 2;
	}
	while (fread(&len, 4, 1, f) == 1) {
		struct dds_proto_msg m;
		int r;

		if (len > sizeof(d) || fread(d, len, 1, f) != 1) {
			fprintf(stderr, "record %lu: truncated\n", n);
			return 1;
		}
		r = dds_proto_parse(d, len, &m);
		if (r != DDS_PROTO_OK) {
			fprintf(stderr, "datagram %lu: %s\n", n, dds_proto_reason_name(r));
			return 1;
		}
		if (!dds_proto_mac_verify(d, len, key)) {
			fprintf(stderr, "datagram %lu: MAC does not verify\n", n);
			return 1;
		}
		reg += m.h.type == DDS_MSG_REGISTER;
		req += m.h.type == DDS_MSG_REQUEST && m.h.frag_index == 0;
		frag += m.h.type == DDS_MSG_REQUEST;
		n++;
	}
	fclose(f);
	printf("ok %lu register %lu request %lu fragments %lu\n", n, reg, req, frag);
	return n ? 0 : 1;
}
