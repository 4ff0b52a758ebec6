/*
 * lm_watch.c - liveness of every heartbeat slot as seen by a reader that
 * holds no slot and writes nothing (vmfsctl hosts/locks/top, tests).
 *
 * Design note. Liveness is never read from the disk: a slot is live when
 * its record changes while we watch, timed on our monotonic clock (the
 * same rule lm_lock.c applies to holders). So a reader must watch:
 *   1. read every slot (the record and its recovery record) once;
 *   2. re-read the used ones every min(interval/4, 100 ms) for `watch`
 *      seconds (callers pass about one or two heartbeat intervals: every
 *      live host beats in that time);
 *   3. with `extend`, while a LIVE slot (or one being reclaimed by its own
 *      new owner) has not moved, go on up to timeout + one interval after
 *      the start, and stop as soon as all of them moved: the cost of telling
 *      dead from slow is paid only when some host is silent.
 * Then each slot is judged:
 *      FREE        free on disk (never used or left/recovered)
 *      LIVE        LIVE and its record moved during the watch
 *      SILENT      LIVE, still, but watched for less than the timeout
 *      DEAD        LIVE and still for at least the timeout (what any host
 *                  may take over now); or being replayed by a replayer that
 *                  is dead or gone (recovery abandoned)
 *      RECOVERING  being replayed by a live replayer
 *      CORRUPT     the slot record does not decode
 * silent_s is how long a still slot has been seen still: a lower bound of
 * its silence (the reader did not see it before), never a remote clock.
 */
#include "lm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

static double mono_s(void)
{
	return (double)lm_now_ns() / 1e9;
}

static int scan(struct bdev *bd, const struct lm_geom *g, struct lm_slot_watch *o, double *t_moved,
		int first)
{
	for (uint32_t i = 0; i < g->nslots; i++) {
		struct lm_slot_info si;
		char why[128] = "";
		int rc;

		if (!first && !o[i].bad && o[i].si.never_used)
			continue; /* cheap: a host joining now is no news */
		rc = lm_slot_read(bd, g, i, &si, why, sizeof(why));
		if (rc < 0 && rc != -EUCLEAN)
			return rc;
		if (rc == -EUCLEAN) {
			o[i].bad = 1;
			snprintf(o[i].why, sizeof(o[i].why), "%s", why);
			continue;
		}
		if (!first && (si.counter != o[i].si.counter || si.gen != o[i].si.gen ||
			       si.state != o[i].si.state))
			t_moved[i] = mono_s();
		o[i].si = si;
		o[i].bad = 0;
	}
	return 0;
}

/* Slots whose silence decides between LIVE and DEAD and that are still. */
static int n_silent(const struct lm_geom *g, const struct lm_slot_watch *o, const double *t_moved)
{
	int n = 0;

	for (uint32_t i = 0; i < g->nslots; i++)
		n += !o[i].bad && t_moved[i] < 0 &&
		     (o[i].si.state == LM_SLOT_LIVE ||
		      (o[i].si.state == LM_SLOT_REPLAYING && o[i].si.replayer_slot == i));
	return n;
}

static void judge(const struct lm_geom *g, struct lm_slot_watch *o, uint32_t i, double watched)
{
	const struct lm_slot_info *si = &o[i].si;
	int timed = watched >= g->hb_timeout_ms / 1000.0;

	if (o[i].bad) {
		o[i].lv = LM_LV_CORRUPT;
	} else if (si->state == LM_SLOT_FREE) {
		o[i].lv = LM_LV_FREE;
	} else if (si->state == LM_SLOT_LIVE) {
		o[i].lv = o[i].last_move_s >= 0 ? LM_LV_LIVE : timed ? LM_LV_DEAD : LM_LV_SILENT;
	} else if (si->replayer_slot == i) {
		o[i].lv = o[i].last_move_s < 0 && timed ? LM_LV_DEAD : LM_LV_RECOVERING;
	} else {
		const struct lm_slot_watch *r = &o[si->replayer_slot];

		/* the replayer decides: alive while its slot is LIVE in that
		 * generation and not judged dead */
		o[i].lv = LM_LV_RECOVERING;
		if (r->bad || r->si.gen != si->replayer_gen ||
		    (r->si.state != LM_SLOT_LIVE && r->si.state != LM_SLOT_REPLAYING))
			o[i].lv = LM_LV_DEAD;
	}
}

int lm_slots_watch(struct bdev *bd, const struct lm_geom *g, double watch, int extend,
		   struct lm_slot_watch *o, double *watched)
{
	double *t_moved = calloc(g->nslots ? g->nslots : 1, sizeof(double));
	double step = g->hb_interval_ms / 4000.0, t0, end, now;
	int rc;

	if (!t_moved)
		return -ENOMEM;
	if (step > 0.1)
		step = 0.1;
	memset(o, 0, g->nslots * sizeof(*o));
	for (uint32_t i = 0; i < g->nslots; i++)
		t_moved[i] = -1;
	t0 = mono_s();
	end = t0 + watch;
	rc = scan(bd, g, o, t_moved, 1);
	while (rc == 0 && mono_s() < end) {
		lm_sleep_ms((int64_t)(step * 1000));
		rc = scan(bd, g, o, t_moved, 0);
	}
	if (rc == 0 && extend && n_silent(g, o, t_moved)) {
		end = t0 + (g->hb_timeout_ms + g->hb_interval_ms) / 1000.0;
		while (rc == 0 && mono_s() < end && n_silent(g, o, t_moved)) {
			lm_sleep_ms((int64_t)(step * 1000));
			rc = scan(bd, g, o, t_moved, 0);
		}
	}
	now = mono_s();
	if (rc == 0) {
		for (uint32_t i = 0; i < g->nslots; i++) {
			o[i].last_move_s = t_moved[i] < 0 ? -1 : now - t_moved[i];
			o[i].silent_s = t_moved[i] < 0 ? now - t0 : o[i].last_move_s;
		}
		for (uint32_t i = 0; i < g->nslots; i++)
			judge(g, o, i, now - t0);
	}
	if (watched)
		*watched = now - t0;
	free(t_moved);
	return rc;
}

const char *lm_liveness_name(enum lm_liveness lv)
{
	switch (lv) {
	case LM_LV_FREE: return "free";
	case LM_LV_LIVE: return "live";
	case LM_LV_SILENT: return "silent";
	case LM_LV_DEAD: return "dead";
	case LM_LV_RECOVERING: return "being-recovered";
	case LM_LV_CORRUPT: return "corrupt";
	}
	return "?";
}
