/*
 * lm_pr.c - fencing with SCSI-3 persistent reservations on shared LUNs.
 *
 * DESIGN NOTE (docs/LOCKING.md, "Fencing on SAN LUNs", has the long version)
 *
 * The lease rule (lockmgr.c, I4) stops a host that finds its lease expired
 * before it writes; it cannot stop a thread paused between that check and
 * the write system call. On a device with persistent reservations
 * (BDEV_CAP_PR: an iSCSI LUN) the target itself closes that window:
 *
 *  R1. Every joined host has one session with the device (its heartbeat
 *      thread shares it) registered under a key of its own derived from
 *      (slot, slot generation, host UUID), so a survivor computes a dead
 *      host's key from its heartbeat record alone (lm_pr_key()). The key is registered BEFORE the
 * ATS that claims the slot (an unregistered session's COMPARE AND WRITE is refused under the
 * reservation) and changed for each slot tried. R2. On COMPARE AND WRITE targets the first host to
 * join makes the reservation WRITE EXCLUSIVE - ALL REGISTRANTS: from then on only registered
 * sessions write. (With the reservation-as-mutex ATS method, BDEV_ATS_PR, there is no standing
 * reservation: only a preempted host's ATS is refused, and its plain writes inside other hosts'
 *      critical sections; docs/BLOCKDEV.md 6.3.)
 *  R3. A host that takes over a dead host's slot PREEMPTs the dead host's
 *      keys after its takeover ATS and BEFORE the takeover callback replays
 *      the dead host's journal. Every later command of the dead (or paused)
 *      host's sessions gets RESERVATION CONFLICT. A preempt the target
 *      refuses with RESERVATION CONFLICT means the key was not registered
 *      (the host had left, was preempted already, or joined without
 *      reservations); any other error aborts the takeover, which is retried
 *      (the slot stays REPLAYING by us).
 *  R4. Any RESERVATION CONFLICT on a write, batch, flush or ATS of this
 *      host's sessions fences it (bdev_set_conflict_hook()): it was
 *      preempted, so a survivor owns its slot. It never re-registers on its
 *      own: only a fresh join (new slot generation, new key) does.
 *  R5. A clean leave removes this host's key (by preempting it: istgt's
 *      REGISTER to key 0 can drop another session's registration); the
 *      reservation goes with the last registrant.
 *
 * Not covered: a host reclaiming a slot at join on a full region
 * (lm_join_reclaim()) holds its own key while it replays, and the slot's
 * REPLAYING record names the dead host's UUID, so a survivor that takes
 * over a reclaim abandoned half-way preempts only the dead host's keys.
 * Keys left by a process that died between registering and claiming a slot
 * stay registered (harmless: nobody uses that session again).
 */
#include "lm_int.h"

#include <errno.h>
#include <string.h>

#include "bdev.h"
#include "crc32c.h"
#include "le.h"

uint64_t lm_pr_key(uint32_t slot, uint32_t gen, const uint8_t uuid[16])
{
	uint8_t g[4];
	uint32_t c;

	le32_put(g, gen);
	c = crc32c(crc32c(0, uuid, 16), g, 4);
	/* slot | gen (low 16 bits) | hash with bit 0 set: never 0 */
	return (uint64_t)(slot & 0xffff) << 48 | (uint64_t)(gen & 0xffff) << 32 | (c | 1u);
}

static void on_conflict(void *arg)
{
	struct lm *lm = arg;

	LM_STAT_INC(lm, pr_conflicts);
	lm_fence(lm, "reservation conflict: the device refused a write of this host "
		     "(its reservation key was preempted by a host that took over its slot)");
}

void lm_pr_setup(struct lm *lm)
{
	lm->pr = (lm->bd->caps & BDEV_CAP_PR) && !(lm->bd->caps & BDEV_CAP_READONLY);
	lm->pr_type = lm->bd->ats_method == BDEV_ATS_PR ? BDEV_PR_WE_REGISTRANTS_ONLY
							: BDEV_PR_WE_ALL_REGISTRANTS;
	/* any device: a conflict can only mean we were preempted */
	bdev_set_conflict_hook(lm->bd, on_conflict, lm);
	if (lm->hb_bd != lm->bd)
		bdev_set_conflict_hook(lm->hb_bd, on_conflict, lm);
	/* one session per host on such devices (open_hb_bd() in lockmgr.c) */
	if (lm->pr && lm->hb_bd != lm->bd)
		lm->pr = 0;
}

void lm_pr_teardown(struct lm *lm)
{
	bdev_set_conflict_hook(lm->bd, NULL, NULL);
	if (lm->hb_bd && lm->hb_bd != lm->bd)
		bdev_set_conflict_hook(lm->hb_bd, NULL, NULL);
}

int lm_pr_enter(struct lm *lm, uint32_t slot, uint32_t gen)
{
	uint64_t key = lm_pr_key(slot, gen, lm->uuid);
	int rc;

	if (!lm->pr || lm->pr_key == key)
		return 0;
	rc = bdev_pr_register(lm->bd, key);
	if (rc < 0) {
		lm_set_err(lm, "registering reservation key %016llx on the device: %s",
			   (unsigned long long)key, bdev_strerror(rc));
		return rc;
	}
	lm->pr_key = key;
	LM_STAT_INC(lm, pr_registers);
	return 0;
}

int lm_pr_reserve(struct lm *lm)
{
	int held = 0, rc;
	uint64_t holder;
	enum bdev_pr_type type;

	if (!lm->pr || lm->bd->ats_method == BDEV_ATS_PR)
		return 0;
	rc = bdev_pr_read_reservation(lm->bd, &held, &holder, &type);
	if (rc == 0 && !held) {
		rc = bdev_pr_reserve(lm->bd, lm->pr_key, BDEV_PR_WE_ALL_REGISTRANTS);
		if (rc == -BDEV_E_RESV_CONFLICT) /* another host reserved first */
			rc = bdev_pr_read_reservation(lm->bd, &held, &holder, &type);
		else if (rc == 0) {
			held = 1;
			type = BDEV_PR_WE_ALL_REGISTRANTS;
		}
	}
	if (rc == 0 && (!held || type != BDEV_PR_WE_ALL_REGISTRANTS)) {
		lm_set_err(lm,
			   "the device holds a reservation of type %d, not WRITE EXCLUSIVE - "
			   "ALL REGISTRANTS (%d): another cluster or tool uses it",
			   held ? (int)type : 0, BDEV_PR_WE_ALL_REGISTRANTS);
		return -EBUSY;
	}
	if (rc < 0)
		lm_set_err(lm, "making the write-exclusive reservation: %s", bdev_strerror(rc));
	return rc;
}

int lm_pr_preempt(struct lm *lm, uint32_t slot, uint32_t gen, const uint8_t uuid[16])
{
	uint64_t victim = lm_pr_key(slot, gen, uuid);
	int rc, absent = 0;

	if (!lm->pr || victim == lm->pr_key)
		return 0; /* no reservations, or our own key (never) */
	rc = bdev_pr_preempt(lm->bd, lm->pr_key, victim, lm->pr_type);
	if (rc == -BDEV_E_RESV_CONFLICT) { /* not registered */
		absent = 1;
		rc = 0;
	}
	if (rc < 0) {
		lm_set_err(lm, "preempting the reservation key of dead slot %u: %s", slot,
			   bdev_strerror(rc));
		return rc;
	}
	LM_STAT_INC(lm, pr_preempts);
	if (absent)
		LM_STAT_INC(lm, pr_preempt_absent);
	return 0;
}

void lm_pr_leave(struct lm *lm)
{
	int rc;

	if (!lm->pr || !lm->pr_key)
		return;
	rc = bdev_pr_register(lm->bd, 0);
	if (rc < 0)
		lm_set_err(lm, "removing reservation key %016llx: %s",
			   (unsigned long long)lm->pr_key, bdev_strerror(rc));
	lm->pr_key = 0;
}

uint64_t lm_pr_own_key(struct lm *lm)
{
	return lm->pr_key;
}

int lm_test_unguarded_write(struct lm *lm, const void *buf, uint64_t off, size_t len)
{
	return bdev_write(lm->bd, buf, off, len);
}
