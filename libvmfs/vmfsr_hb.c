/*
 * vmfsr_hb.c - heartbeat slots and FD lock records of real VMFS5/6.
 *
 * Design note. The heartbeat region starts at logical 3 MiB: 2048 slots of
 * 512 bytes on VMFS5, 1024 slots of max(4 KiB, sector) on VMFS6. A slot's
 * state is 0xabcdef01 (free) or 0xabcdef02 (a live host bumps its
 * generation/stamp every few seconds); a never-used slot is all zeroes.
 * Every FD starts with a lock record naming the owner's heartbeat slot and
 * UUID, the lock mode and generation. Both are listed as found, read-only;
 * a slot whose own address field disagrees with its position is reported
 * as BAD rather than trusted.
 */
#include "vmfsr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"

#define HB_CHUNK 64

static void hb_decode(const struct vmfsr *fs, const uint8_t *b, uint32_t slot, struct vmfsr_hb *hb)
{
	memset(hb, 0, sizeof(*hb));
	hb->slot = slot;
	hb->offset = HB_OFF + (uint64_t)slot * fs->hb_slot;
	hb->magic = le32_get(b + HB_O_STATE);
	hb->address = le64_get(b + HB_O_ADDR);
	hb->generation = le64_get(b + HB_O_GEN);
	hb->stamp_us = le64_get(b + HB_O_STAMP);
	vmfsr_uuid_fmt(b + HB_O_OWNER, hb->owner);
	hb->journal = le32_get(b + HB_O_JOURNAL);
	memcpy(hb->ip, b + HB_O_IP, 46);
	hb->ip[46] = 0;
	for (char *c = hb->ip; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	vmfsr_uuid_fmt(b + HB_O_REPLAY, hb->replay_owner);
	if (hb->magic == HB_LIVE)
		hb->state = VMFSR_HB_LIVE;
	else if (hb->magic == HB_FREE)
		hb->state = VMFSR_HB_FREE;
	else
		hb->state = VMFSR_HB_BAD;
	if (hb->address != hb->offset)
		hb->state = VMFSR_HB_BAD;
}

/* Never used: all zero, or formatted free with no owner and generation 0. */
static int hb_unused(const uint8_t *p)
{
	static const uint8_t zero[16];
	uint32_t state = le32_get(p + HB_O_STATE);

	if (state == 0 && le64_get(p + HB_O_ADDR) == 0)
		return 1;
	return state == HB_FREE && le64_get(p + HB_O_GEN) == 0 &&
	       !memcmp(p + HB_O_OWNER, zero, sizeof(zero));
}

int vmfsr_heartbeats(struct vmfsr *fs, vmfsr_hb_cb cb, void *arg)
{
	size_t chunk = (size_t)fs->hb_slot * HB_CHUNK;
	uint8_t *b = malloc(chunk);
	int rc = 0;

	if (!b)
		return -ENOMEM;
	for (uint32_t s = 0; s < fs->hb_count && !rc; s += HB_CHUNK) {
		rc = vmfsr_vol_read(fs, HB_OFF + (uint64_t)s * fs->hb_slot, b, chunk,
				    "heartbeat region");
		for (uint32_t i = 0; i < HB_CHUNK && !rc; i++) {
			const uint8_t *p = b + (size_t)i * fs->hb_slot;
			struct vmfsr_hb hb;

			if (hb_unused(p))
				continue;
			hb_decode(fs, p, s + i, &hb);
			rc = cb(arg, &hb);
		}
	}
	free(b);
	return rc;
}

const char *vmfsr_lock_mode_name(uint32_t mode)
{
	switch (mode) {
	case VMFSR_LOCK_NONE: return "free";
	case VMFSR_LOCK_EXCL: return "exclusive";
	case VMFSR_LOCK_RO: return "read-only";
	case VMFSR_LOCK_MW: return "multi-writer";
	default: return "unknown";
	}
}

static void lock_decode(const uint8_t *raw, uint32_t fd, uint32_t ftype, struct vmfsr_lock *lk)
{
	memset(lk, 0, sizeof(*lk));
	lk->fd = fd;
	lk->ftype = ftype;
	lk->type = le32_get(raw + LK_O_TYPE);
	lk->offset = le64_get(raw + LK_O_OFFSET);
	lk->hb_addr = le64_get(raw + LK_O_HB_ADDR);
	lk->hb_gen = le64_get(raw + LK_O_HB_GEN);
	lk->generation = le64_get(raw + LK_O_GEN);
	lk->mode = le32_get(raw + LK_O_MODE);
	vmfsr_uuid_fmt(raw + LK_O_OWNER, lk->owner);
	lk->mtime = le64_get(raw + LK_O_MTIME);
	lk->holders = le32_get(raw + LK_O_HOLDERS);
}

int vmfsr_locks(struct vmfsr *fs, vmfsr_lock_cb cb, void *arg)
{
	uint8_t *raw = malloc(fs->fd_size);
	int rc = 0;

	if (!raw)
		return -ENOMEM;
	for (uint64_t i = 0; i < fs->fdc.nres && !rc; i++) {
		uint64_t cl = i / fs->fdc.per_cluster, res = i % fs->fdc.per_cluster;
		uint32_t addr = (uint32_t)(res << 22 | cl << 6 | A_FD);
		struct vmfsr_lock lk;

		if (cl > 0xffff || res > 0x3ff)
			break;
		rc = vmfsr_res_read(fs, &fs->fdc, cl, res, raw, 0, fs->fd_size);
		if (rc < 0)
			break;
		if (le32_get(raw + fs->md_align + FD_O_ADDR) != addr)
			continue; /* free FD */
		lock_decode(raw, addr, le32_get(raw + fs->md_align + FD_O_TYPE), &lk);
		if (lk.type != LK_TYPE_FD) {
			rc = vmfsr_corrupt(fs, "FD 0x%08x: lock record type 0x%08x unknown", addr,
					   lk.type);
			break;
		}
		rc = cb(arg, &lk);
	}
	free(raw);
	return rc;
}
