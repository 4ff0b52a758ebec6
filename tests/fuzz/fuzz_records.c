/*
 * fuzz_records.c - libFuzzer harness: every decoder of a single on-disk
 * record, on one 4 KiB block (the input, zero padded): the native format's
 * volume header, journal header / descriptor / commit, cluster header, FD
 * inode, pointer block, xattr block, directory block (and its entries),
 * extension table block,
 * each with and without the volume layout to check against, and lockmgr's
 * heartbeat slot and lock record decoders (lm_unit_check,
 * lm_slot_describe). What decodes must encode back to the same bytes
 * (docs/FORMAT.md: decode then encode reproduces a record byte for byte).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "lockmgr.h"

static struct vmfs_vh vh;
static int have_vh;

static void layout(void)
{
	struct vmfs_mkfs_opts o = {.block_size = 64u << 10,
				   .max_hosts = 4,
				   .journal_size = 256u << 10,
				   .nlocks = 4,
				   .nfds = 512};
	char why[128];

	have_vh = vmfs_layout(64ull << 20, 512, &o, &vh, why, sizeof(why)) == 0;
}

/* decode -> encode must give the record back (first `len` bytes). */
static void same(const uint8_t *in, const uint8_t *out, size_t len)
{
	if (memcmp(in, out, len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t b[4096] __attribute__((aligned(8))), o[4096];
	static union {
		struct vmfs_vh vh;
		struct vmfs_jh jh;
		struct vmfs_jd jd;
		struct vmfs_jc jc;
		struct vmfs_ch ch;
		struct vmfs_fd fd;
		struct vmfs_pb pb;
		struct vmfs_xb xb;
		struct vmfs_db db;
		struct vmfs_xt_blk xt;
	} u;
	const struct vmfs_vh *v = have_vh ? &vh : NULL;
	struct vmfs_dirent e;
	char why[256];

	if (!have_vh)
		layout();
	v = have_vh ? &vh : NULL;
	memset(b, 0, sizeof(b));
	memcpy(b, data, size < sizeof(b) ? size : sizeof(b));
	if (vmfs_vh_decode(b, 0, &u.vh, why, sizeof(why)) == 0) {
		vmfs_vh_encode(&u.vh, o);
		same(b, o, VMFS_VH_SIZE);
	}
	vmfs_vh_decode(b, 1ull << 40, &u.vh, why, sizeof(why));
	for (int k = 0; k < 2; k++) {
		const struct vmfs_vh *l = k ? v : NULL;

		if (vmfs_jh_decode(b, l, k ? 1 : UINT32_MAX, &u.jh, why, sizeof(why)) == 0) {
			vmfs_jh_encode(&u.jh, o);
			same(b, o, VMFS_JH_SIZE);
		}
		if (vmfs_jd_decode(b, l, &u.jd, why, sizeof(why)) == 0) {
			vmfs_jd_encode(&u.jd, o);
			same(b, o, VMFS_JD_SIZE);
		}
		if (vmfs_ch_decode(b, l, &u.ch, why, sizeof(why)) == 0) {
			vmfs_ch_encode(&u.ch, o);
			same(b, o, VMFS_CH_SIZE);
		}
		if (vmfs_fd_decode(b, l, &u.fd, why, sizeof(why)) == 0) {
			vmfs_fd_encode(&u.fd, o);
			same(b, o, VMFS_FD_INODE_SIZE);
		}
		if (vmfs_pb_decode(b, l, &u.pb, why, sizeof(why)) == 0) {
			vmfs_pb_encode(&u.pb, o);
			same(b, o, VMFS_PB_BLOCK_SIZE);
		}
		if (vmfs_xb_decode(b, l, &u.xb, why, sizeof(why)) == 0) {
			vmfs_xb_encode(&u.xb, o);
			same(b, o, VMFS_XB_SIZE);
		}
		if (vmfs_db_decode(b, l, &u.db, why, sizeof(why)) == 0) {
			vmfs_db_encode(&u.db, o);
			same(b, o, VMFS_DB_SIZE);
			for (uint32_t pos = 0; vmfs_db_next(&u.db, &pos, &e);)
				if (vmfs_name_hash(e.name, e.name_len) != e.hash)
					abort();
		}
	}
	if (v && vmfs_xt_decode(b, v, VMFS_RT_SB, b[0x14] & 1, &u.xt, why, sizeof(why)) == 0) {
		vmfs_xt_encode(&u.xt, o);
		same(b, o, VMFS_UNIT);
	}
	if (vmfs_jc_decode(b, &u.jc, why, sizeof(why)) == 0) {
		vmfs_jc_encode(&u.jc, o);
		same(b, o, VMFS_JC_SIZE);
	}
	lm_unit_check(b, sizeof(b), why, sizeof(why));
	lm_unit_check(b, 512, why, sizeof(why));
	lm_slot_describe(b, sizeof(b), why, sizeof(why));
	return 0;
}
