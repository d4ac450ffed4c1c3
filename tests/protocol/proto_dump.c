/* proto_dump.c: prints datagrams encoded by the C library, for scapy_check.py to compare with. */
#include <stdio.h>
#include <stdlib.h>

#include "dds_proto.h"

/* The scenario scapy_check.py rebuilds on its own: keep the two in step. */
#define DEV 0x0a0b0c0du
#define REQ 77u
#define MODEL 0xfeedface12345678ull

static void print_hex(const char *name, const uint8_t *d, size_t len)
{
	printf("%s ", name);
	for (size_t i = 0; i < len; i++)
		printf("%02x", d[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	size_t mtu = argc > 1 ? strtoul(argv[1], NULL, 10) : 1500;
	uint8_t key[DDS_PROTO_KEY_LEN], out[9000];
	for (int i = 0; i < DDS_PROTO_KEY_LEN; i++)
		key[i] = (uint8_t)(3 * i + 1);
	static float payload[700]; /* value 2: [3, 100], then value 4: [2, 8, 25] */
	for (int i = 0; i < 700; i++)
		payload[i] = 0.25f * (float)i;
	struct dds_proto_tmsg tm = {.value = 3.25, .payload_len = sizeof payload, .n_tensors = 2};
	tm.t[0] = (struct dds_proto_tensor){2, DDS_DTYPE_F32, 2, {3, 100, 0, 0}};
	tm.t[1] = (struct dds_proto_tensor){4, DDS_DTYPE_F32, 3, {2, 8, 25, 0}};
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = DEV, .request_id = REQ,
				  .model_hash = MODEL};
	unsigned n = dds_proto_frag_count(&tm, mtu);
	if (n == 0) {
		fprintf(stderr, "proto_dump: MTU %zu too small\n", mtu);
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t len = dds_proto_encode_frag(&h, &tm, payload, i, mtu, key, out, sizeof out);
		print_hex("request", out, len);
	}
	h.request_id = REQ + 1;
	print_hex("register", out, dds_proto_encode_register(&h, (uint32_t)mtu, key, out, sizeof out));
	h.request_id = 12;
	h.model_hash = 0;
	print_hex("price", out, dds_proto_encode_price(&h, 0.125, key, out, sizeof out));
	return 0;
}
