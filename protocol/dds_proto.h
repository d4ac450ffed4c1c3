/* dds_proto.h: the DDS wire protocol (docs/protocol.md): codec, MAC, replay window, reassembly.
 *
 * Pure C + OpenSSL's libcrypto: no DPDK, no sockets. The node's dataplane and the device agent
 * both call this library. Every datagram is <32-byte header><body><12-byte nonce><16-byte tag>,
 * all integers big-endian; the tag is AES-256-GMAC (AES-256-GCM with no plaintext) under the key
 * of the device named in the header, with the nonce as IV and every byte before the tag as AAD.
 * Nothing is allocated except by dds_proto_rx_new() and dds_proto_devtab_new(), by the
 * request-buffer allocator the caller supplies, and by the MAC's per-thread state (prepared keys
 * and the nonce counter, freed when the thread exits).
 *
 * Time is always passed in by the caller (nanoseconds, any epoch), so behaviour is deterministic.
 */
#ifndef DDS_PROTO_H
#define DDS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DDS_PROTO_MAGIC 0x4453u /* "DS" */
#define DDS_PROTO_VERSION 2
#define DDS_PROTO_HDR_LEN 32
#define DDS_PROTO_NONCE_LEN 12 /* GCM IV: per-thread random base + counter, never repeated */
#define DDS_PROTO_TAG_LEN 16   /* AES-256-GMAC tag */
#define DDS_PROTO_MAC_LEN (DDS_PROTO_NONCE_LEN + DDS_PROTO_TAG_LEN) /* the trailer: nonce, tag */
#define DDS_PROTO_KEY_LEN 32
#define DDS_PROTO_TMSG_LEN 20   /* fixed part of a REQUEST/RESULT body */
#define DDS_PROTO_TDESC_LEN 20  /* one tensor descriptor */
#define DDS_PROTO_MAX_TENSORS 16
#define DDS_PROTO_MAX_DIMS 4
#define DDS_PROTO_FRAG_ALIGN 8  /* fragment offsets and non-final lengths are multiples of 8 */
#define DDS_PROTO_IP_UDP_OVERHEAD 28 /* IPv4 (no options) + UDP headers, subtracted from the MTU */
#define DDS_PROTO_MAX_WORK 512  /* entries in a registration reply's work table */

enum dds_msg_type {
	DDS_MSG_REGISTER = 1,       /* device -> node: model hash, receive MTU */
	DDS_MSG_REGISTER_REPLY = 2, /* node -> device: p, p0, limits, server work */
	DDS_MSG_REQUEST = 3,        /* device -> node: one fragment of an inference request */
	DDS_MSG_RESULT = 4,         /* node -> device: one fragment of a result, with p */
	DDS_MSG_PRICE = 5,          /* node -> device: the price of a round */
	DDS_MSG_ERROR = 6,          /* node -> device: a request was refused, with a reason */
	DDS_MSG_BUSY = 7,           /* node -> device: no capacity now, retry later */
};

enum dds_dtype { DDS_DTYPE_F32 = 1, DDS_DTYPE_F16 = 2 /* reserved: refused in version 2 */ };

/* Why a datagram or a request was dropped (also the code of an ERROR message). Every drop made
 * by this library increments exactly one counter; docs/protocol.md says when each happens. */
enum dds_proto_reason {
	DDS_PROTO_OK = 0,
	DDS_DROP_TRUNCATED,        /* shorter than header + MAC */
	DDS_DROP_BAD_MAGIC,
	DDS_DROP_BAD_VERSION,
	DDS_DROP_BAD_TYPE,         /* type not defined in this version */
	DDS_DROP_BAD_FLAGS,        /* a flag bit or a reserved field is not zero */
	DDS_DROP_BAD_LENGTH,       /* lengths disagree with each other or with the datagram */
	DDS_DROP_BAD_FRAGMENT,     /* index/count/offset/length impossible or misaligned */
	DDS_DROP_BAD_TENSOR,       /* bad tensor count, dtype, rank or dims; sizes do not add up */
	DDS_DROP_BAD_VALUE,        /* budget or price not finite and >= 0 */
	DDS_DROP_UNEXPECTED_TYPE,  /* valid type, wrong direction for this receiver */
	DDS_DROP_UNKNOWN_DEVICE,   /* no key configured for the device id */
	DDS_DROP_BAD_MAC,          /* MAC does not verify: forged or corrupted */
	DDS_DROP_REPLAY,           /* request id already seen or older than the window */
	DDS_DROP_TOO_LARGE,        /* payload above the configured maximum */
	DDS_DROP_DEVICE_SLOTS,     /* the device already has its maximum of partial requests */
	DDS_DROP_DEVICE_MEMORY,    /* the device's partial requests would exceed its byte limit */
	DDS_DROP_TABLE_FULL,       /* every reassembly slot is in use */
	DDS_DROP_MEMORY,           /* all partial requests together would exceed the byte limit */
	DDS_DROP_ALLOC_FAILED,     /* the buffer allocator returned NULL */
	DDS_DROP_DUPLICATE,        /* fragment adds no new byte (its bytes equal those held) */
	DDS_DROP_INCONSISTENT,     /* fragment's descriptor differs from the request's (request dropped) */
	DDS_DROP_OVERLAP_CONFLICT, /* overlapping bytes differ from those held (request dropped) */
	DDS_DROP_TIMEOUT,          /* request not complete by its deadline (request dropped) */
	DDS_DROP_UNKNOWN_MODEL,    /* model hash not the one checked against */
	DDS_DROP_BAD_SPLIT,        /* tensors are not a valid cut of the model graph */
	DDS_DROP_EXEC_FAILED,      /* the node's backend failed on the request (ERROR only) */
	DDS_DROP_SHUTTING_DOWN,    /* the node stopped before answering the request (ERROR only) */
	DDS_PROTO_REASON__COUNT
};

/* Name of a reason ("bad_mac"), or "unknown" for a value out of range. Never NULL. */
const char *dds_proto_reason_name(int reason);

/* The fixed header of every datagram. */
struct dds_proto_hdr {
	uint8_t type;
	uint16_t flags; /* zero in version 2 */
	uint32_t device_id;
	uint16_t frag_index, frag_count; /* 0 and 1 for single-datagram messages */
	uint64_t request_id;             /* the price round for PRICE */
	uint64_t model_hash;             /* FNV-1a 64 of the model JSON (dds_model.hash) */
};

struct dds_proto_tensor {
	uint16_t value_id; /* 0 = raw input, k+1 = output of layer k */
	uint8_t dtype;     /* enum dds_dtype */
	uint8_t ndim;      /* 1..4, per-sample shape */
	uint32_t dim[DDS_PROTO_MAX_DIMS]; /* unused dims are 0 */
};

/* What a REQUEST or RESULT carries besides its bytes: same in every fragment of a message. */
struct dds_proto_tmsg {
	double value;         /* budget x (REQUEST) or price p (RESULT) */
	uint32_t payload_len; /* the concatenation of the tensors, in bytes */
	uint16_t n_tensors;
	struct dds_proto_tensor t[DDS_PROTO_MAX_TENSORS];
};

struct dds_proto_reg_reply {
	double price, p0;
	uint32_t max_payload, max_inflight, timeout_ms;
	uint16_t work_kind; /* 0: per-layer table w_v, 1: regression w_v = work[0]*flops_v + work[1] */
	uint16_t n_work;
	const double *work; /* encode: caller's array; decode: NULL, read with dds_proto_reg_work() */
};

/* A parsed datagram. Pointers point into the datagram, which must outlive this struct. */
struct dds_proto_msg {
	struct dds_proto_hdr h;
	union {
		struct { /* REQUEST, RESULT */
			struct dds_proto_tmsg tm;
			uint32_t frag_offset;
			uint16_t frag_len;
			const uint8_t *data;
		} frag;
		struct { uint32_t rx_mtu; } reg;              /* REGISTER */
		struct dds_proto_reg_reply reply;             /* REGISTER_REPLY */
		struct { double price; } price;               /* PRICE */
		struct { double price; uint16_t reason; } err; /* ERROR */
		struct { double price; uint32_t retry_ms; } busy; /* BUSY */
	} u;
	const uint8_t *work_be; /* REGISTER_REPLY: n_work big-endian f64s */
};

/* Parse and validate a datagram's syntax (not its MAC). Returns DDS_PROTO_OK or the reason. */
int dds_proto_parse(const uint8_t *dgram, size_t len, struct dds_proto_msg *out);

/* Entry i of a parsed registration reply's work list. */
double dds_proto_reg_work(const struct dds_proto_msg *m, unsigned i);

/* Sign a datagram of len bytes whose header is written: a fresh nonce goes to the 12 bytes
 * before the last 16, the tag of everything before it to the last 16. Returns false, leaving the
 * trailer unspecified (do not send it), if len < DDS_PROTO_HDR_LEN + DDS_PROTO_MAC_LEN or when
 * memory or randomness is lacking. Each thread keeps prepared keys for recently used devices
 * (the header's device id picks the cache entry; the key decides whether it holds), so callers
 * pass raw keys and pay the AES key schedule only when a device's key changes. Thread-safe. */
bool dds_proto_mac_sign(uint8_t *dgram, size_t len, const uint8_t key[DDS_PROTO_KEY_LEN]);
/* True if the trailing tag verifies under key (constant-time compare); false for a short datagram
 * or when memory is lacking. Same per-thread key cache as dds_proto_mac_sign(). */
bool dds_proto_mac_verify(const uint8_t *dgram, size_t len, const uint8_t key[DDS_PROTO_KEY_LEN]);
/* The library computing the MAC in this build, with its version and code path, e.g.
 * "intel-ipsec-mb 1.3.0 (avx512)" (x86-64 builds that found it) or "OpenSSL 3.0.17 ...". */
const char *dds_proto_mac_impl(void);

/* ---- encoders: each writes one signed datagram into out[cap]; returns its length, or 0 if it
 * does not fit in cap, the arguments are invalid or signing failed (nothing useful is left in
 * out then). ---- */

/* Payload bytes per fragment for this message at this IP MTU (a multiple of 8), 0 if none fit. */
size_t dds_proto_frag_chunk(const struct dds_proto_tmsg *tm, size_t mtu);
/* Fragments needed (>= 1), or 0 if the message cannot be sent at this MTU. */
unsigned dds_proto_frag_count(const struct dds_proto_tmsg *tm, size_t mtu);
/* Fragment `index` of a REQUEST or RESULT (h->type) whose whole payload is `payload`. The
 * datagram's fragment index and count come from `index` and the MTU (h's are ignored). */
size_t dds_proto_encode_frag(const struct dds_proto_hdr *h, const struct dds_proto_tmsg *tm,
			     const void *payload, unsigned index, size_t mtu,
			     const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap);
size_t dds_proto_encode_register(const struct dds_proto_hdr *h, uint32_t rx_mtu,
				 const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap);
size_t dds_proto_encode_reg_reply(const struct dds_proto_hdr *h, const struct dds_proto_reg_reply *r,
				  const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap);
size_t dds_proto_encode_price(const struct dds_proto_hdr *h, double price,
			      const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap);
size_t dds_proto_encode_error(const struct dds_proto_hdr *h, double price, uint16_t reason,
			      const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap);
size_t dds_proto_encode_busy(const struct dds_proto_hdr *h, double price, uint32_t retry_ms,
			     const uint8_t key[DDS_PROTO_KEY_LEN], uint8_t *out, size_t cap);

/* ---- replay window: the last 64 ids below the highest one seen (as in IPsec) ---- */
struct dds_replay {
	uint64_t top;    /* highest id accepted */
	uint64_t bitmap; /* bit k: id top-k accepted */
};
/* True if id is new: above top, or within 64 below it and not yet seen. Changes nothing. */
bool dds_replay_check(const struct dds_replay *w, uint64_t id);
/* Record id as seen (after dds_replay_check() returned true; an id more than 63 below the top,
 * which only a receiver with accept_replays records, leaves no mark). */
void dds_replay_commit(struct dds_replay *w, uint64_t id);

/* ---- device table: device id -> key and per-device receive state ---- */
struct dds_proto_devtab;
/* A table for up to `capacity` devices; NULL if out of memory or capacity is 0. */
struct dds_proto_devtab *dds_proto_devtab_new(uint32_t capacity);
void dds_proto_devtab_free(struct dds_proto_devtab *t);
/* Add (or re-key) a device. Returns 0, or -1 when the table is full. */
int dds_proto_devtab_add(struct dds_proto_devtab *t, uint32_t device_id,
			 const uint8_t key[DDS_PROTO_KEY_LEN]);
/* A key written as text: exactly 2 * DDS_PROTO_KEY_LEN hex digits (either case) in hex[0..len).
 * Returns 0 with key filled, or -1 (key unspecified) for any other text. */
int dds_proto_key_parse(const char *hex, size_t len, uint8_t key[DDS_PROTO_KEY_LEN]);

/* The device's key, or NULL if unknown. */
const uint8_t *dds_proto_devtab_key(const struct dds_proto_devtab *t, uint32_t device_id);

/* ---- receiver: validation, authentication, replay, reassembly ---- */

enum dds_proto_role {
	DDS_ROLE_NODE,   /* accepts REGISTER and REQUEST */
	DDS_ROLE_DEVICE, /* accepts REGISTER_REPLY, RESULT, PRICE, ERROR, BUSY */
};

struct dds_proto_rx_config {
	enum dds_proto_role role;
	uint32_t max_slots;            /* partial messages held at once, all devices */
	uint32_t max_slots_per_device;
	uint64_t max_bytes;            /* payload bytes held by partial messages, all devices */
	uint64_t max_bytes_per_device;
	uint32_t max_payload;          /* largest payload accepted */
	uint64_t timeout_ns;           /* from the first fragment to completion */
	bool accept_replays;           /* load tests with looped captures only: request ids are
					* still recorded but not checked against the replay window,
					* so a replayed datagram is accepted (and served) again.
					* false (the default) refuses replays: DDS_DROP_REPLAY */
};

/* Where reassembled payloads live. alloc returns a buffer of `len` bytes for the message
 * described by `m` (its first fragment to arrive), or NULL to refuse (DDS_DROP_ALLOC_FAILED).
 * release is called for a buffer whose message is dropped before completion. A completed
 * buffer is handed to the caller in the event and never released by the receiver. */
struct dds_proto_alloc {
	void *(*alloc)(void *ctx, const struct dds_proto_msg *m, size_t len);
	void (*release)(void *ctx, void *buf, size_t len);
	void *ctx;
};

enum dds_proto_event_kind {
	DDS_EV_NONE,     /* fragment stored, or datagram dropped (see reason) */
	DDS_EV_COMPLETE, /* a REQUEST/RESULT is complete: msg (its last fragment) + buf */
	DDS_EV_MESSAGE,  /* an authenticated single-datagram message: msg */
};

struct dds_proto_event {
	enum dds_proto_event_kind kind;
	int reason;                /* DDS_PROTO_OK, or why the datagram was dropped */
	struct dds_proto_msg msg;  /* COMPLETE, MESSAGE; also set for a drop after parsing */
	void *buf;                 /* COMPLETE: the payload, owned by the caller now */
	size_t len;                /* COMPLETE: its length (msg.u.frag.tm.payload_len) */
	uint64_t first_ns;         /* COMPLETE: now_ns of the message's first fragment */
};

struct dds_proto_rx;

/* A receiver over a device table the caller keeps alive. alloc NULL means malloc/free (free a
 * completed buffer with free()). Returns NULL on a bad config or out of memory. */
struct dds_proto_rx *dds_proto_rx_new(const struct dds_proto_rx_config *cfg,
				      struct dds_proto_devtab *devs,
				      const struct dds_proto_alloc *alloc);
/* Frees the receiver, releasing the buffers of partial messages (not counted as drops). */
void dds_proto_rx_free(struct dds_proto_rx *rx);

/* Handle one datagram received at time now_ns. Fills *ev; a drop increments its counter. */
void dds_proto_rx_input(struct dds_proto_rx *rx, const uint8_t *dgram, size_t len,
			uint64_t now_ns, struct dds_proto_event *ev);
/* Drop partial messages whose deadline is <= now_ns (DDS_DROP_TIMEOUT each). Returns how many. */
unsigned dds_proto_rx_expire(struct dds_proto_rx *rx, uint64_t now_ns);

/* Called by dds_proto_rx_drain() for each partial message: its header as its first fragment
 * gave it (type, device, request id, model hash, fragment count; frag_index 0) and the time of
 * that fragment. */
typedef void (*dds_proto_drain_fn)(void *arg, const struct dds_proto_hdr *h, uint64_t first_ns);
/* Release every partial message (e.g. when the node stops), calling fn (may be NULL) with each
 * one's header first, so that the caller can refuse it. Not counted as drops: the caller counts.
 * Returns how many were released. */
unsigned dds_proto_rx_drain(struct dds_proto_rx *rx, dds_proto_drain_fn fn, void *arg);

/* Counter of a reason (drops; the OK counter counts accepted datagrams). */
uint64_t dds_proto_rx_count(const struct dds_proto_rx *rx, int reason);
/* Partial messages held and their reserved payload bytes (all devices). */
uint32_t dds_proto_rx_slots_used(const struct dds_proto_rx *rx);
uint64_t dds_proto_rx_bytes_used(const struct dds_proto_rx *rx);

/* ---- the split against a model (for the node, after a REQUEST completes) ---- */
struct dds_model;
/* DDS_PROTO_OK if the message is for model m (hash), its tensors are distinct values of m in
 * ascending order, float32 with m's shapes, and the model's output can be computed from them
 * (every path from the raw input to the output passes a sent tensor); else
 * DDS_DROP_UNKNOWN_MODEL, DDS_DROP_BAD_SPLIT, or DDS_DROP_ALLOC_FAILED. */
int dds_proto_check_split(const struct dds_model *m, uint64_t model_hash,
			  const struct dds_proto_tmsg *tm);

#endif
