/*
 * format_check.c - the offline checker behind `vmfsctl fsck`: the passes and
 * their findings. format_repair.c holds the repairs (docs/FSCK.md lists
 * every finding and its repair).
 *
 * Design note
 * -----------
 * A check is one or more rounds. A round reads everything again from the
 * device (nothing is kept from the previous round but what the heartbeat
 * observation saw), so a repair never relies on a structure it has just
 * changed. Passes of a round (a structure that fails to decode is not used
 * by later passes unless a repair rebuilt it):
 *   1. volume header copies: each decodes, and they are identical;
 *   2. atomic units (volume lock, heartbeat slots, lock area): all-zero or
 *      accepted by lockmgr's lm_unit_check(); held lock records are kept;
 *   3. (VMFS_CHECK_HOSTS, first round) the heartbeat observation: every
 *      LIVE or REPLAYING slot is watched until it moves or the heartbeat
 *      timeout + one interval passed; a moving slot is a live host;
 *   4. journal headers; journals holding committed transactions that were
 *      not replayed yet are counted (a crashed host's journal waits for a
 *      survivor or for fsck's host recovery);
 *   5. dead hosts (HOSTS): each is a problem; repair replays their journals
 *      (through a read-write mount) and takes their slots over;
 *   6. cluster headers + bitmaps, cluster lock units;
 *   7. every allocated FD: lock unit, inode, block tree (PBs, FBs, SBs),
 *      extended-attribute block, nalloc; directories: header, buckets,
 *      overflow chains, entries in the right bucket naming allocated FDs
 *      (an entry naming a free FD whose inode is intact marks it allocated,
 *      and it is checked in turn);
 *   8. doubly referenced blocks (repair: clone or drop, once all references
 *      are known), every allocated FB/SB/PB referenced, every allocated FD
 *      the root, UNLINKED or named by a directory; link counts;
 *   9. held lock records whose holders are all gone (HOSTS); repairs end the
 *      round: orphans linked into the root, changed bitmaps written.
 *
 * Invariants:
 *  1. Nothing is written unless VMFS_CHECK_REPAIR or VMFS_CHECK_PREEN is
 *     given, and then only when no host was seen alive (ck_prob() refuses).
 *  2. Every finding goes through ck_prob(): one line per problem, counted
 *     once as left or as fixed; a line already reported by an earlier round
 *     is counted but not printed again.
 *  3. Every value read from the device is decoded by the format's decoders
 *     (or lockmgr's) before use; addresses are used only after
 *     vmfs_addr_check() (done by the decoders) and bitmap indexes are
 *     bounded by the layout.
 */
#include "format_check_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev.h"
#include "crc32c.h"
#include "le.h"
#include "lockmgr.h"

#define MAX_REPORTED 1000 /* problems reported one by one; the rest are counted */
#define MAX_ROUNDS   8

/* ---- reporting -------------------------------------------------------------- */

static int seen_before(struct ck_run *r, uint32_t h)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (r->seen[i] == h)
			return 1;
	return 0;
}

static void emit(struct ck *c, const char *suffix)
{
	struct ck_run *r = c->run;
	char line[700];
	uint32_t h;

	h = crc32c(crc32c(0, c->region, strlen(c->region) + 1), c->msg, strlen(c->msg));
	if (seen_before(r, h))
		return;
	ck_append((void **)&r->seen, &r->nseen, &r->cseen, sizeof(h), &h);
	if (!r->cb || c->st->problems + c->fixed > MAX_REPORTED)
		return;
	snprintf(line, sizeof(line), "%s%s", c->msg, suffix);
	r->cb(r->arg, c->region, line);
}

/* Why a problem of this kind is not repaired now (NULL: it may be). */
static const char *refusal(struct ck *c, enum ck_fix fix)
{
	unsigned f = c->run->flags;

	if (!(f & (VMFS_CHECK_REPAIR | VMFS_CHECK_PREEN)))
		return "";
	if (fix == FIX_NONE)
		return " [not fixed: no repair for this]";
	if (c->run->live)
		return " [not fixed: hosts are live]";
	if (fix == FIX_DEFER)
		return " [not fixed: depends on a problem left]";
	if (fix == FIX_RISKY && !(f & VMFS_CHECK_REPAIR)) {
		c->st->not_fixed_risky++;
		return " [not fixed: needs -y]";
	}
	return NULL;
}

int ck_prob(struct ck *c, enum ck_fix fix, const char *region, const char *fmt, ...)
{
	const char *no;
	va_list ap;

	snprintf(c->region, sizeof(c->region), "%s", region);
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	no = refusal(c, fix);
	if (no) {
		c->st->problems++;
		emit(c, no);
		return 0;
	}
	return 1;
}

/* Ends a finding ck_prob() let through: rc 0 repaired, else left. */
void ck_fixed_how(struct ck *c, int rc, const char *how)
{
	char sfx[200];

	if (rc == 0) {
		c->fixed++;
		snprintf(sfx, sizeof(sfx), how ? " [fixed: %s]" : " [fixed]", how);
	} else {
		c->st->problems++;
		snprintf(sfx, sizeof(sfx), " [not fixed: %s]",
			 rc == -EUCLEAN ? "nothing to salvage" : strerror(-rc > 0 ? -rc : EIO));
	}
	emit(c, sfx);
}

static void problem(struct ck *c, const char *region, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct ck *c, const char *region, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck_prob(c, FIX_NONE, region, "%s", msg);
}

/* ---- helpers ------------------------------------------------------------------ */

int ck_append(void **arr, size_t *n, size_t *cap, size_t size, const void *item)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void *p = realloc(*arr, nc * size);

		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = nc;
	}
	memcpy((uint8_t *)*arr + *n * size, item, size);
	(*n)++;
	return 0;
}

int ck_read(struct ck *c, void *buf, uint64_t off, size_t len)
{
	int rc = bdev_read(c->bd, buf, off, len);

	if (rc && !c->err) {
		c->err = rc;
		c->st->err_off = off;
	}
	return rc;
}

/* Index of a resource in the per-type bitmaps. */
uint64_t ck_res_idx(const struct ck *c, uint64_t a)
{
	unsigned t = vmfs_addr_type(a);

	return (uint64_t)vmfs_addr_cl(a) * c->vh.res[t].per_cl + vmfs_addr_res(a);
}

int ck_bit(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

void ck_setbit(uint8_t *bm, uint64_t i, int v)
{
	if (v)
		bm[i / 8] = (uint8_t)(bm[i / 8] | 1u << (i % 8));
	else
		bm[i / 8] = (uint8_t)(bm[i / 8] & ~(1u << (i % 8)));
}

/* Changes the allocation bit of a resource (a repair): its cluster header is
 * rewritten at the end of the round. */
void ck_mark_alloc(struct ck *c, uint64_t a, int v)
{
	unsigned t = vmfs_addr_type(a);

	ck_setbit(c->t[t].alloc, ck_res_idx(c, a), v);
	c->t[t].dirty[vmfs_addr_cl(a)] = 1;
}

/* why without a leading "prefix: " (the region already names it). */
static const char *strip(const char *why, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(why, prefix, n) == 0 && why[n] == ':' && why[n + 1] == ' ' ? why + n + 2
										  : why;
}

static int repairing(const struct ck *c)
{
	return (c->run->flags & (VMFS_CHECK_REPAIR | VMFS_CHECK_PREEN)) && !c->run->live;
}

/* ---- pass 1: headers ------------------------------------------------------ */

static int read_header(struct ck *c)
{
	char why[320];
	int rc = vmfs_vh_read(c->bd, &c->vh, why, sizeof(why));

	if (rc == -EUCLEAN) {
		problem(c, "volume header", "%s", strip(why, "volume header"));
		c->st->no_header = 1;
		return rc;
	}
	if (rc) {
		c->st->err_off = VMFS_VH_OFF;
		return c->err = rc;
	}
	/* Extension clusters: without a sound table, addresses into them
	 * would look invalid and "repairs" would cut files off; stop here. */
	rc = vmfs_xtab_load(c->bd, &c->vh, why, sizeof(why));
	if (rc)
		vmfs_xtab_free(&c->vh);
	if (rc == -EUCLEAN) {
		problem(c, "extension table", "%s (not repaired: fsck stops here)", why);
		return rc;
	}
	if (rc) {
		c->st->err_off = c->vh.xtab_off;
		return c->err = rc;
	}
	return 0;
}

static int check_headers(struct ck *c)
{
	uint8_t *p = c->buf, *b = c->buf + VMFS_UNIT;
	struct vmfs_vh bvh;
	char why[320];
	int prc, brc, rc;
	uint64_t boff = c->vh.backup_off;

	if (ck_read(c, p, VMFS_VH_OFF, VMFS_UNIT) || ck_read(c, b, boff, VMFS_UNIT))
		return c->err;
	prc = c->vh.from_backup ? -EUCLEAN : 0;
	if (prc)
		vmfs_vh_decode(p, c->bd->size, &bvh, why, sizeof(why));
	brc = prc ? 0 : vmfs_vh_decode(b, c->bd->size, &bvh, why, sizeof(why));
	if (prc)
		rc = ck_prob(c, FIX_SAFE, "volume header", "%s (the backup is good)",
			     strip(why, "volume header"));
	else if (brc)
		rc =
		    ck_prob(c, FIX_SAFE, "backup volume header", "%s", strip(why, "volume header"));
	else if (memcmp(p, b, VMFS_VH_SIZE))
		rc = ck_prob(c, FIX_SAFE, "backup volume header", "differs from the primary");
	else
		return 0;
	if (!rc)
		return 0;
	rc = rp_write(c, prc ? b : p, prc ? VMFS_VH_OFF : boff, VMFS_UNIT);
	if (rc == 0)
		rc = bdev_flush(c->bd);
	ck_fixed_how(c, rc, prc ? "rewritten from the backup" : "rewritten from the primary");
	if (rc) {
		c->st->err_off = prc ? VMFS_VH_OFF : boff;
		return c->err = rc;
	}
	c->vh.from_backup = 0;
	return 0;
}

/* ---- pass 2: atomic units ------------------------------------------------- */

/* A valid non-zero lock unit: judged once the hosts are known (pass 9). */
static void keep_held(struct ck *c, uint64_t off, const char *region)
{
	struct ck_held h;

	if (!(c->run->flags & VMFS_CHECK_HOSTS) || c->in_hb)
		return;
	h.off = off;
	snprintf(h.region, sizeof(h.region), "%s", region);
	if (ck_append((void **)&c->held, &c->nheld, &c->cheld, sizeof(h), &h))
		c->err = -ENOMEM;
}

static void check_unit(struct ck *c, const uint8_t *u, uint64_t off, const char *region,
		       uint64_t *used)
{
	char why[256];

	if (vmfs__zero(u, 0, VMFS_UNIT))
		return;
	if (used)
		(*used)++;
	if (!lm_unit_check(u, VMFS_UNIT, why, sizeof(why))) {
		keep_held(c, off, region);
		return;
	}
	if (ck_prob(c, FIX_SAFE, region, "%s", why))
		ck_fixed_how(c, rp_zero_unit(c, off), "zeroed: free, never used");
}

static void check_unit_array(struct ck *c, uint64_t off, uint32_t n, const char *name,
			     uint64_t *used)
{
	const uint32_t chunk = 256;
	uint8_t *buf = bdev_alloc((size_t)chunk * VMFS_UNIT);
	char region[64];

	if (!buf) {
		c->err = -ENOMEM;
		return;
	}
	for (uint32_t i = 0; i < n; i += chunk) {
		uint32_t k = n - i < chunk ? n - i : chunk;

		if (ck_read(c, buf, off + (uint64_t)i * VMFS_UNIT, (size_t)k * VMFS_UNIT))
			break;
		for (uint32_t j = 0; j < k; j++) {
			snprintf(region, sizeof(region), "%s %" PRIu32, name, i + j);
			check_unit(c, buf + (size_t)j * VMFS_UNIT,
				   off + (uint64_t)(i + j) * VMFS_UNIT, region, used);
		}
	}
	bdev_free(buf);
}

/* ---- pass 3: the heartbeat observation (VMFS_CHECK_HOSTS) --------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Reads every slot; moved[i] is set when slot i differs from first[]. */
static int read_slots(struct ck *c, uint8_t *img)
{
	return ck_read(c, img, c->vh.hb_off, (size_t)c->vh.max_hosts * VMFS_UNIT);
}

static int all_moved(struct ck *c, const uint8_t *moved)
{
	for (uint32_t i = 0; i < c->vh.max_hosts; i++)
		if (c->run->slots[i].si.state == LM_SLOT_LIVE &&
		    c->run->slots[i].verdict != HOST_BAD && !moved[i])
			return 0;
	return 1;
}

static void judge_slots(struct ck *c, const uint8_t *moved)
{
	struct ck_slot *s = c->run->slots;
	uint32_t n = c->vh.max_hosts;

	for (uint32_t i = 0; i < n; i++) {
		if (s[i].verdict == HOST_BAD || s[i].si.state == LM_SLOT_FREE)
			continue;
		if (s[i].si.state == LM_SLOT_LIVE)
			s[i].verdict = moved[i] ? HOST_ALIVE : HOST_DEAD;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rs = s[i].si.replayer_slot;

		if (s[i].verdict == HOST_BAD || s[i].si.state != LM_SLOT_REPLAYING)
			continue;
		s[i].verdict =
		    rs < n && s[rs].verdict == HOST_ALIVE && s[rs].si.gen == s[i].si.replayer_gen
			? HOST_ALIVE
			: HOST_DEAD;
	}
	for (uint32_t i = 0; i < n; i++) {
		c->st->hosts_live += s[i].verdict == HOST_ALIVE;
		c->st->hosts_dead += s[i].verdict == HOST_DEAD;
	}
	c->run->live = c->st->hosts_live;
}

static void observe_hosts(struct ck *c)
{
	struct ck_run *r = c->run;
	struct lm_geom g = {c->vh.hb_off, c->vh.max_hosts, c->vh.hb_interval_ms,
			    c->vh.hb_timeout_ms};
	size_t len = (size_t)c->vh.max_hosts * VMFS_UNIT;
	uint8_t *first = bdev_alloc(len), *now = bdev_alloc(len), *moved;
	int64_t end = now_ms() + c->vh.hb_timeout_ms + c->vh.hb_interval_ms;
	unsigned step = c->vh.hb_interval_ms / 2 < 250 ? c->vh.hb_interval_ms / 2 : 250;
	int watch = 0;

	r->slots = calloc(c->vh.max_hosts, sizeof(*r->slots));
	moved = calloc(c->vh.max_hosts, 1);
	if (!first || !now || !r->slots || !moved) {
		c->err = -ENOMEM;
		goto out;
	}
	r->nslots = c->vh.max_hosts;
	for (uint32_t i = 0; i < g.nslots; i++) {
		if (lm_slot_read(c->bd, &g, i, &r->slots[i].si, NULL, 0))
			r->slots[i].verdict = HOST_BAD;
		else if (r->slots[i].si.state != LM_SLOT_FREE)
			watch = 1;
	}
	if (read_slots(c, first))
		goto out;
	while (watch && !all_moved(c, moved) && now_ms() < end) {
		sleep_ms(step);
		if (read_slots(c, now))
			goto out;
		for (uint32_t i = 0; i < g.nslots; i++)
			if (memcmp(first + (size_t)i * VMFS_UNIT, now + (size_t)i * VMFS_UNIT,
				   LM_REC_SIZE))
				moved[i] = 1;
	}
	judge_slots(c, moved);
	r->hosts_done = 1;
out:
	bdev_free(first);
	bdev_free(now);
	free(moved);
}

/* Later rounds: the observation stands; a slot still not free is re-read so
 * that a dead host left behind stays counted. */
static void recheck_hosts(struct ck *c)
{
	struct ck_run *r = c->run;
	struct lm_geom g = {c->vh.hb_off, c->vh.max_hosts, c->vh.hb_interval_ms,
			    c->vh.hb_timeout_ms};
	struct lm_slot_info si;

	c->st->hosts_live = r->live;
	for (uint32_t i = 0; i < r->nslots && i < g.nslots; i++) {
		if (r->slots[i].verdict != HOST_DEAD)
			continue;
		if (lm_slot_read(c->bd, &g, i, &si, NULL, 0) == 0 && si.state == LM_SLOT_FREE) {
			r->slots[i].verdict = HOST_FREE;
			r->slots[i].si = si;
			continue;
		}
		c->st->hosts_dead++;
	}
}

/* ---- pass 4: journals -------------------------------------------------------
 * Kept small on purpose: the journal header's layout is the file system's
 * (fs_journal.c); only vmfs_jh_decode() and the transaction decoders are
 * used here, and rp_journal_reset() rewrites a lost header. */

/* Counts the committed transactions from the head (stops at the first
 * invalid one, as replay does); they are not problems: a crashed host's
 * journal holds them until a survivor or the next mount replays it. */
uint64_t ck_journal_pending(struct bdev *bd, const struct vmfs_vh *vh, uint32_t slot)
{
	uint64_t joff = vmfs_journal_off(vh, slot);
	uint8_t *blk = bdev_alloc(VMFS_JH_COPIES * VMFS_UNIT), *desc = bdev_alloc(VMFS_UNIT);
	struct vmfs_jd *jd = malloc(sizeof(*jd));
	uint64_t nlog, pos, txid, n = 0, used = 0;
	struct vmfs_jh jh;
	struct vmfs_jc jc;
	uint32_t crc;

	if (!blk || !desc || !jd || bdev_read(bd, blk, joff, VMFS_JH_COPIES * VMFS_UNIT) ||
	    vmfs_jh_pick(blk, blk + VMFS_UNIT, vh, slot, &jh, NULL, NULL, 0))
		goto out;
	nlog = vmfs_journal_nlog(jh.journal_len);
	pos = jh.head;
	txid = jh.head_txid;
	while (used < nlog) {
		if (bdev_read(bd, desc, vmfs_journal_log_off(joff, jh.journal_len, pos),
			      VMFS_UNIT) ||
		    vmfs_jd_decode(desc, vh, jd, NULL, 0) || jd->txid != txid)
			break;
		crc = crc32c(0, desc, VMFS_UNIT);
		for (uint32_t i = 0; i <= jd->nblocks; i++) {
			uint64_t at = vmfs_journal_log_off(joff, jh.journal_len, pos + 1 + i);

			if (bdev_read(bd, blk, at, VMFS_UNIT))
				goto out;
			if (i < jd->nblocks)
				crc = crc32c(crc, blk, VMFS_UNIT);
		}
		if (vmfs_jc_decode(blk, &jc, NULL, 0) || jc.txid != txid ||
		    jc.nblocks != jd->nblocks || jc.data_crc != crc)
			break;
		n++;
		txid++;
		used += jd->nblocks + 2;
		pos = (pos + jd->nblocks + 2) % nlog;
	}
out:
	bdev_free(blk);
	bdev_free(desc);
	free(jd);
	return n;
}

static void check_journals(struct ck *c)
{
	struct vmfs_jh jh;
	char why[256], region[48];

	for (uint32_t s = 0; s < c->vh.max_hosts; s++) {
		uint64_t joff = vmfs_journal_off(&c->vh, s);
		enum ck_fix fix = FIX_RISKY;

		/* both copies (c->buf holds two units); one bad copy is what a
		 * torn header write leaves and is harmless */
		if (ck_read(c, c->buf, joff, VMFS_JH_COPIES * VMFS_UNIT))
			return;
		snprintf(region, sizeof(region), "journal %" PRIu32 " header", s);
		if (!vmfs_jh_pick(c->buf, c->buf + VMFS_UNIT, &c->vh, s, &jh, NULL, why,
				  sizeof(why))) {
			if (ck_journal_pending(c->bd, &c->vh, s))
				c->st->journals_pending++;
			continue;
		}
		/* A free slot's journal holds nothing to replay: resetting loses
		 * nothing. Otherwise only -y may (the host may have left work). */
		if (c->run->hosts_done && s < c->run->nslots &&
		    c->run->slots[s].verdict == HOST_FREE)
			fix = FIX_SAFE;
		if (ck_prob(c, fix, region, "%s", why))
			ck_fixed_how(c, rp_journal_reset(c, s), "reset to an empty journal");
	}
}

/* ---- pass 5: dead hosts --------------------------------------------------------- */

static void check_dead_hosts(struct ck *c)
{
	if (c->run->round == 1)
		rp_hosts(c); /* reports each dead host, repairs when allowed */
	else
		recheck_hosts(c);
	for (uint32_t i = 0; c->run->round > 1 && i < c->run->nslots; i++) {
		const struct lm_slot_info *si = &c->run->slots[i].si;
		char region[48];

		if (c->run->slots[i].verdict != HOST_DEAD)
			continue;
		snprintf(region, sizeof(region), "heartbeat slot %" PRIu32, i);
		problem(c, region, "host '%s' (generation %" PRIu32 ") is dead but its slot is %s",
			si->hostname, si->gen, lm_slot_state_name(si->state));
	}
}

/* ---- pass 6: clusters ------------------------------------------------------- */

static int alloc_type(struct ck *c, unsigned t)
{
	struct ck_type *ct = &c->t[t];
	size_t bytes;

	ct->nres = (uint64_t)vmfs_ncl(&c->vh, t) * c->vh.res[t].per_cl;
	bytes = (size_t)((ct->nres + 7) / 8);
	ct->alloc = calloc(1, bytes ? bytes : 1);
	ct->ref = calloc(1, bytes ? bytes : 1);
	ct->valid = calloc(vmfs_ncl(&c->vh, t), 1);
	ct->dirty = calloc(vmfs_ncl(&c->vh, t), 1);
	ct->rebuild = calloc(vmfs_ncl(&c->vh, t), 1);
	return ct->alloc && ct->ref && ct->valid && ct->dirty && ct->rebuild ? 0 : -ENOMEM;
}

/* A bad FD cluster header: its FDs are those whose inode is intact. */
static void probe_fd_cluster(struct ck *c, uint32_t cl)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	uint32_t n = vmfs_cl_nres(&c->vh, VMFS_RT_FD, cl);

	for (uint32_t i = 0; fd && i < n; i++) {
		uint64_t a = vmfs_addr_make(VMFS_RT_FD, cl, i);

		if (ck_read(c, c->buf, vmfs_addr_off(&c->vh, a) + VMFS_UNIT, VMFS_UNIT))
			break;
		if (!vmfs_fd_decode(c->buf, &c->vh, fd, NULL, 0) && fd->self == a)
			ck_setbit(c->t[VMFS_RT_FD].alloc, ck_res_idx(c, a), 1);
	}
	free(fd);
}

/* The file blocks turned into extension clusters: each is referenced by
 * the table (once), so it must be allocated and no file may use it. */
static void check_xtab_refs(struct ck *c)
{
	static const unsigned types[3] = {VMFS_RT_FD, VMFS_RT_PB, VMFS_RT_SB};
	struct ck_type *fb = &c->t[VMFS_RT_FB];
	char region[64], as[48];

	for (unsigned k = 0; k < 3; k++) {
		unsigned t = types[k];

		for (uint32_t cl = c->vh.res[t].ncl; cl < vmfs_ncl(&c->vh, t); cl++) {
			uint64_t off = vmfs_cl_off(&c->vh, t, cl), a;
			uint64_t n = (off - c->vh.data_off) / c->vh.block_size;
			uint64_t i;

			a = vmfs_addr_make(VMFS_RT_FB, (uint32_t)(n / VMFS_FB_PER_CL),
					   (uint32_t)(n % VMFS_FB_PER_CL));
			i = ck_res_idx(c, a);
			vmfs_addr_str(a, as, sizeof(as));
			snprintf(region, sizeof(region), "extension table %s entry %" PRIu32,
				 vmfs_rtype_name(t), cl - c->vh.res[t].ncl);
			if (ck_bit(fb->ref, i)) {
				problem(c, region, "%s is used by two extension clusters", as);
				continue;
			}
			ck_setbit(fb->ref, i, 1);
			if (!fb->valid[vmfs_addr_cl(a)] || ck_bit(fb->alloc, i))
				continue;
			if (ck_prob(c, FIX_SAFE, region,
				    "%s holds %s cluster %" PRIu32 " but is free in its bitmap", as,
				    vmfs_rtype_name(t), cl)) {
				ck_mark_alloc(c, a, 1);
				ck_fixed_how(c, 0, "marked allocated");
			}
		}
	}
}

/* FB clusters of a grown volume past the FB region (INCOMPAT_FBX) live
 * in their own first block: referenced by the cluster, so it must be
 * allocated in that cluster's bitmap and no file may use it. */
static void check_fbx_refs(struct ck *c)
{
	struct ck_type *fb = &c->t[VMFS_RT_FB];
	char region[64], as[48];

	for (uint32_t cl = c->vh.res[VMFS_RT_FB].ncl; cl < vmfs_ncl(&c->vh, VMFS_RT_FB); cl++) {
		uint64_t a = vmfs_addr_make(VMFS_RT_FB, cl, 0), i = ck_res_idx(c, a);

		ck_setbit(fb->ref, i, 1);
		if (!fb->valid[cl] || ck_bit(fb->alloc, i))
			continue;
		if (fb->rebuild[cl]) {
			ck_setbit(fb->alloc, i, 1);
			continue;
		}
		vmfs_addr_str(a, as, sizeof(as));
		snprintf(region, sizeof(region), "FB cluster %" PRIu32 " header", cl);
		if (ck_prob(c, FIX_SAFE, region,
			    "%s holds the cluster's own header but is free in its bitmap", as)) {
			ck_mark_alloc(c, a, 1);
			ck_fixed_how(c, 0, "marked allocated");
		}
	}
}

static void check_clusters(struct ck *c, unsigned t)
{
	struct ck_type *ct = &c->t[t];
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	char why[256], region[64];
	int bad;

	if (!ch) {
		c->err = -ENOMEM;
		return;
	}
	for (uint32_t cl = 0; cl < vmfs_ncl(&c->vh, t); cl++) {
		uint64_t base = (uint64_t)cl * c->vh.res[t].per_cl;
		uint64_t off = vmfs_cl_off(&c->vh, t, cl);

		if (ck_read(c, c->buf, off, 2 * VMFS_UNIT))
			break;
		snprintf(region, sizeof(region), "%s cluster %" PRIu32 " lock", vmfs_rtype_name(t),
			 cl);
		check_unit(c, c->buf, off, region, NULL);
		snprintf(region, sizeof(region), "%s cluster %" PRIu32 " header",
			 vmfs_rtype_name(t), cl);
		bad = vmfs_ch_decode(c->buf + VMFS_UNIT, &c->vh, ch, why, sizeof(why));
		if (!bad && (ch->type != t || ch->index != cl)) {
			snprintf(why, sizeof(why), "wrong type or index");
			bad = 1;
		}
		if (bad) {
			/* Rebuilt at the end of the round from what references it. */
			if (ck_prob(c, FIX_SAFE, region, "%s", strip(why, "cluster header"))) {
				ct->valid[cl] = ct->rebuild[cl] = ct->dirty[cl] = 1;
				if (t == VMFS_RT_FD)
					probe_fd_cluster(c, cl);
				ck_fixed_how(c, 0, "rebuilt from the references found");
			}
			continue;
		}
		ct->valid[cl] = 1;
		for (uint32_t i = 0; i < ch->nres; i++)
			if (vmfs_bit_get(ch->bitmap, i))
				ck_setbit(ct->alloc, base + i, 1);
	}
	free(ch);
}

/* ---- pass 7: FDs and their trees ------------------------------------------ */

/* Where a pointer lives (for the repairs of what it points to). */
struct ptr_at {
	uint64_t where; /* device offset of the inode block or PB */
	uint32_t slot;
	int in_pb;
};

struct fdwalk {
	const char *region;
	uint64_t self;
	uint64_t nalloc;
	int partial;   /* part of the tree was not read (a problem left) */
	uint64_t *map; /* dir files: logical 4K block -> device offset (0 = hole) */
	uint64_t nmap;
};

static void add_dup(struct ck *c, const struct fdwalk *w, const struct ptr_at *at, uint64_t a,
		    int drop)
{
	struct ck_dup d = {w->self, at->where, at->slot, at->in_pb, a, drop};

	if (ck_append((void **)&c->dups, &c->ndups, &c->cdups, sizeof(d), &d))
		c->err = -ENOMEM;
}

/* Records a reference to `a` found in `region`; reports a reference to a
 * resource that its bitmap says is free, or that was already referenced
 * (then returns 1: a PB met twice is not walked twice, so a hostile tree
 * costs at most one read per PB). */
static int take_ref(struct ck *c, const struct fdwalk *w, const struct ptr_at *at, uint64_t a)
{
	unsigned t = vmfs_addr_type(a);
	struct ck_type *ct = &c->t[t];
	uint64_t i = ck_res_idx(c, a);
	uint32_t cl = vmfs_addr_cl(a);
	char as[48];

	vmfs_addr_str(a, as, sizeof(as));
	if (!ct->valid[cl])
		return 0; /* cluster header already reported */
	if (ck_bit(ct->ref, i)) {
		if (ck_prob(c, FIX_RISKY, w->region, "references %s, which is referenced twice",
			    as)) {
			add_dup(c, w, at, a, 0);
			ck_fixed_how(
			    c, 0, t == VMFS_RT_PB ? "reference dropped" : "copied to a new block");
		}
		return 1;
	}
	if (!ck_bit(ct->alloc, i)) {
		if (ct->rebuild[cl])
			ck_setbit(ct->alloc, i, 1);
		else if (ck_prob(c, FIX_SAFE, w->region,
				 "references %s, which is free in its cluster bitmap", as)) {
			ck_mark_alloc(c, a, 1);
			ck_fixed_how(c, 0, "marked allocated");
		}
	}
	ck_setbit(ct->ref, i, 1);
	return 0;
}

static void map_data(struct ck *c, struct fdwalk *w, uint64_t lbn, uint64_t a, uint32_t bsize)
{
	uint64_t per = bsize / VMFS_UNIT, first = lbn * per, off = vmfs_addr_off(&c->vh, a);

	for (uint64_t k = 0; k < per && w->map && first + k < w->nmap; k++)
		w->map[first + k] = off + k * VMFS_UNIT;
}

/* A pointer block (or xattr block) that cannot be used: its pointer is
 * dropped (a hole), later rounds fix nalloc and free what it held. */
static void bad_child(struct ck *c, struct fdwalk *w, const struct ptr_at *at, uint64_t a,
		      const char *what)
{
	if (ck_prob(c, FIX_RISKY, w->region, "%s", what)) {
		add_dup(c, w, at, a, 1);
		ck_fixed_how(c, 0, "reference dropped");
	} else {
		w->partial = 1;
	}
}

static void walk_pb(struct ck *c, struct fdwalk *w, const struct ptr_at *at, uint64_t a,
		    uint32_t level, uint64_t lbn)
{
	struct vmfs_pb *pb;
	char why[256];
	uint64_t span = level == 2 ? VMFS_PB_NADDR : 1, off = vmfs_addr_off(&c->vh, a);

	w->nalloc++;
	if (take_ref(c, w, at, a))
		return;
	pb = malloc(sizeof(*pb));
	if (!pb || ck_read(c, c->buf + VMFS_UNIT, off, VMFS_UNIT)) {
		free(pb);
		return;
	}
	if (vmfs_pb_decode(c->buf + VMFS_UNIT, &c->vh, pb, why, sizeof(why)))
		bad_child(c, w, at, a, why);
	else if (pb->self != a || pb->owner != w->self || pb->level != level)
		bad_child(c, w, at, a, "pointer block: self/owner/level do not match its use");
	else
		for (unsigned i = 0; i < VMFS_PB_NADDR; i++) {
			struct ptr_at here = {off, i, 1};

			if (!pb->addr[i])
				continue;
			if (level == 2) {
				walk_pb(c, w, &here, pb->addr[i], 1, lbn + i * span);
			} else {
				w->nalloc++;
				if (!take_ref(c, w, &here, pb->addr[i]))
					map_data(c, w, lbn + i, pb->addr[i], c->vh.block_size);
			}
		}
	free(pb);
}

static void walk_fd(struct ck *c, struct fdwalk *w, const struct vmfs_fd *fd)
{
	uint64_t n = VMFS_PB_NADDR, ioff = vmfs_addr_off(&c->vh, w->self) + VMFS_UNIT;

	if (fd->amode == VMFS_AM_INLINE)
		return;
	for (unsigned i = 0; i < VMFS_NADDR; i++) {
		struct ptr_at at = {ioff, i, 0};
		uint64_t a = fd->u.addr[i];

		if (!a)
			continue;
		if (i >= VMFS_NDIRECT + VMFS_NSINGLE)
			walk_pb(c, w, &at, a, 2,
				VMFS_NDIRECT + VMFS_NSINGLE * n +
				    (i - VMFS_NDIRECT - VMFS_NSINGLE) * n * n);
		else if (i >= VMFS_NDIRECT)
			walk_pb(c, w, &at, a, 1, VMFS_NDIRECT + (i - VMFS_NDIRECT) * n);
		else {
			w->nalloc++;
			if (!take_ref(c, w, &at, a))
				map_data(c, w, i, a,
					 fd->amode == VMFS_AM_SB ? VMFS_SB_SIZE : c->vh.block_size);
		}
	}
}

/* The FD's extended-attribute block: allocated, referenced once, valid,
 * owned by this FD (not counted in nalloc). Returns 1 when it is dropped. */
static int walk_xattr(struct ck *c, struct fdwalk *w, struct vmfs_fd *fd)
{
	struct ptr_at at = {0, 0, 0};
	uint64_t a = fd->xattr;
	struct vmfs_xb *xb;
	char why[256];
	int bad = 0;

	if (c->t[VMFS_RT_PB].valid[vmfs_addr_cl(a)] &&
	    ck_bit(c->t[VMFS_RT_PB].ref, ck_res_idx(c, a))) {
		/* Already owned by another file: this one loses it. */
		if (ck_prob(c, FIX_RISKY, w->region,
			    "its xattr block is referenced by another file")) {
			fd->xattr = 0;
			ck_fixed_how(c, rp_fd_store(c, fd), "extended attributes dropped");
		}
		return 1;
	}
	take_ref(c, w, &at, a);
	xb = malloc(sizeof(*xb));
	if (!xb || ck_read(c, c->buf + VMFS_UNIT, vmfs_addr_off(&c->vh, a), VMFS_UNIT)) {
		free(xb);
		return 0;
	}
	if (vmfs_xb_decode(c->buf + VMFS_UNIT, &c->vh, xb, why, sizeof(why)))
		bad = 1;
	else if (xb->self != a || xb->owner != w->self)
		bad = snprintf(why, sizeof(why), "xattr block: self/owner do not match its use");
	free(xb);
	if (bad && ck_prob(c, FIX_RISKY, w->region, "%s", why)) {
		fd->xattr = 0;
		ck_fixed_how(c, rp_fd_store(c, fd), "extended attributes dropped");
	}
	return 0;
}

/* An entry naming a free FD: an intact inode there was lost from the bitmap
 * (marked allocated again, checked in turn); else the entry dangles. */
static int entry_free_fd(struct ck *c, const char *reg, const struct vmfs_dirent *e)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	char as[48];
	int intact = 0;

	vmfs_addr_str(e->fd, as, sizeof(as));
	if (fd && repairing(c) &&
	    !ck_read(c, c->buf, vmfs_addr_off(&c->vh, e->fd) + VMFS_UNIT, VMFS_UNIT) &&
	    !vmfs_fd_decode(c->buf, &c->vh, fd, NULL, 0) && fd->self == e->fd &&
	    fd->type == e->type && !(fd->flags & VMFS_FDF_UNLINKED))
		intact = 1;
	free(fd);
	if (intact) {
		if (ck_prob(c, FIX_SAFE, reg, "entry '%s' names %s, which is free in its bitmap",
			    e->name, as)) {
			ck_mark_alloc(c, e->fd, 1);
			ck_fixed_how(c, 0, "marked allocated (its inode is intact)");
		}
		return 0;
	}
	if (ck_prob(c, FIX_RISKY, reg, "entry '%s' names a free FD", e->name)) {
		ck_fixed_how(c, 0, "entry removed"); /* by the caller, after the block */
		return 1;
	}
	return 0;
}

/* Removes the entries named in `gone` (NUL-separated) from db and rewrites
 * it at off. */
static int drop_entries(struct ck *c, uint64_t off, struct vmfs_db *db, const char *gone, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vmfs_db_remove(db, gone, strlen(gone));
		gone += strlen(gone) + 1;
	}
	return rp_db_store(c, off, db);
}

static void check_entries(struct ck *c, struct fdwalk *w, const struct vmfs_db *h,
			  struct vmfs_db *db, uint32_t b, const char *reg, uint64_t *total)
{
	static char gone[VMFS_DB_AREA + 256];
	struct vmfs_dirent e;
	size_t ngone = 0, glen = 0;
	uint64_t fdix;

	for (uint32_t pos = 0; vmfs_db_next(db, &pos, &e);) {
		if (vmfs_dir_bucket(e.hash, h->level, h->split) != b)
			problem(c, reg, "entry '%s' is in the wrong bucket", e.name);
		fdix = ck_res_idx(c, e.fd);
		if (!c->t[VMFS_RT_FD].valid[vmfs_addr_cl(e.fd)]) {
			(*total)++;
			continue;
		}
		if (!ck_bit(c->t[VMFS_RT_FD].alloc, fdix) && entry_free_fd(c, reg, &e)) {
			memcpy(gone + glen, e.name, (size_t)e.name_len + 1);
			glen += (size_t)e.name_len + 1;
			ngone++;
			continue;
		}
		(*total)++;
		c->links[fdix]++;
		if (e.type == VMFS_FT_DIR)
			c->subdirs[ck_res_idx(c, w->self)]++;
	}
	if (ngone) {
		int rc = drop_entries(c, w->map[db->index], db, gone, ngone);

		if (rc && !c->err)
			c->err = rc;
	}
}

/* Checks one directory's blocks; counts links of the FDs it names. */
static void check_dir_entries(struct ck *c, struct fdwalk *w, struct vmfs_db *h, struct vmfs_db *db)
{
	uint64_t total = 0;
	char why[256], reg[96];
	int incomplete = 0;

	for (uint32_t b = 0; b < h->nbuckets && !c->err; b++) {
		uint64_t blk = 1 + 2 * (uint64_t)b;
		uint32_t steps = 0;

		while (blk) {
			snprintf(reg, sizeof(reg), "%s directory block %" PRIu64, w->region, blk);
			if (blk >= w->nmap || !w->map[blk]) {
				problem(c, reg, "missing (hole or beyond the directory size)");
				incomplete = 1;
				break;
			}
			if (ck_read(c, c->buf + VMFS_UNIT, w->map[blk], VMFS_UNIT))
				return;
			if (vmfs_db_decode(c->buf + VMFS_UNIT, &c->vh, db, why, sizeof(why))) {
				int rc;

				if (!ck_prob(c, FIX_RISKY, reg, "%s", why)) {
					incomplete = 1;
					break;
				}
				rc = rp_db_salvage(c, w->map[blk], c->buf + VMFS_UNIT, w->self,
						   (uint32_t)blk, b, db);
				ck_fixed_how(c, rc < 0 ? rc : 0,
					     rc == 1 ? "emptied: its files are orphans now"
						     : "resealed, every entry decodes");
			} else if (db->dir != w->self || db->index != blk || db->bucket != b ||
				   (blk % 2 == 0 && db->kind != VMFS_DB_OVERFLOW)) {
				problem(c, reg, "directory block: owner/index/bucket do not match");
				incomplete = 1;
				break;
			}
			check_entries(c, w, h, db, b, reg, &total);
			if (++steps > h->novf + 1) {
				problem(c, reg, "overflow chain loops");
				incomplete = 1;
				break;
			}
			blk = db->next;
		}
	}
	c->incomplete |= incomplete;
	if (total != h->total &&
	    ck_prob(c, incomplete ? FIX_DEFER : FIX_SAFE, w->region,
		    "directory header counts %" PRIu64 " entries, found %" PRIu64, h->total,
		    total)) {
		h->total = total;
		ck_fixed_how(c, rp_db_store(c, w->map[0], h), NULL);
	}
}

static void check_dir(struct ck *c, struct fdwalk *w)
{
	struct vmfs_db *h = malloc(sizeof(*h)), *db = malloc(sizeof(*db));
	int incomplete_before = c->incomplete;
	char why[256], reg[96];

	snprintf(reg, sizeof(reg), "%s directory block 0", w->region);
	if (!h || !db) {
		c->err = -ENOMEM;
	} else if (w->nmap < 2 || !w->map[0]) {
		problem(c, reg, "missing (empty directory file)");
		c->incomplete = 1;
	} else if (!ck_read(c, c->buf + VMFS_UNIT, w->map[0], VMFS_UNIT)) {
		c->incomplete = 1; /* unless the header is usable */
		if (vmfs_db_decode(c->buf + VMFS_UNIT, &c->vh, h, why, sizeof(why)))
			problem(c, reg, "%s", why);
		else if (h->kind != VMFS_DB_HEADER || h->dir != w->self)
			problem(c, reg, "directory block: not this directory's header");
		else if (2 * (uint64_t)h->nbuckets > w->nmap)
			problem(c, reg,
				"directory header: %" PRIu32 " buckets beyond the file size",
				h->nbuckets);
		else {
			c->incomplete = incomplete_before;
			check_dir_entries(c, w, h, db);
		}
	}
	free(h);
	free(db);
}

/* Decodes the inode at a (read into c->buf + 4 KiB); a bad one is salvaged
 * or, when nothing can be saved, the FD is freed. 0: fd is usable. */
static int load_fd(struct ck *c, uint64_t a, const char *region, struct vmfs_fd *fd)
{
	uint8_t *raw = c->buf + VMFS_UNIT;
	int root = a == c->vh.root_fd;
	char why[256], what[128];

	if (!vmfs_fd_decode(raw, &c->vh, fd, why, sizeof(why))) {
		if (fd->self == a)
			return 0;
		snprintf(why, sizeof(why), "FD inode: self address does not match its place");
	} else if (vmfs__zero(raw, 0, VMFS_UNIT) && !root) {
		/* Allocated but never written: a leaked FD, nothing to lose. */
		if (ck_prob(c, FIX_SAFE, region, "FD is allocated but its inode is empty")) {
			ck_mark_alloc(c, a, 0);
			ck_fixed_how(c, 0, "freed");
		}
		return -EUCLEAN;
	}
	if (!ck_prob(c, FIX_RISKY, region, "%s", why)) {
		c->unwalked = 1; /* left allocated, its blocks not known */
		return -EUCLEAN;
	}
	if (rp_fd_salvage(c, a, raw, fd, what, sizeof(what)) == 0) {
		ck_fixed_how(c, 0, what);
		return 0;
	}
	if (root) {
		c->unwalked = 1;
		ck_fixed_how(c, -EUCLEAN, NULL);
		return -EUCLEAN;
	}
	ck_fixed_how(c, rp_fd_clear(c, a), "FD freed: nothing to salvage");
	return -EUCLEAN;
}

static void check_fd(struct ck *c, uint64_t a, struct vmfs_fd *fd)
{
	uint64_t off = vmfs_addr_off(&c->vh, a);
	struct fdwalk w = {0};
	char region[64], as[48];

	vmfs_addr_str(a, as, sizeof(as));
	w.region = region;
	w.self = a;
	if (ck_read(c, c->buf, off, 2 * VMFS_UNIT))
		return;
	snprintf(region, sizeof(region), "%s lock", as);
	check_unit(c, c->buf, off, region, NULL);
	if (ck_read(c, c->buf + VMFS_UNIT, off + VMFS_UNIT, VMFS_UNIT))
		return;
	snprintf(region, sizeof(region), "%s", as);
	if (load_fd(c, a, region, fd))
		return;
	if (fd->type == VMFS_FT_DIR) {
		w.nmap = (fd->size + VMFS_UNIT - 1) / VMFS_UNIT;
		if (w.nmap > (1u << 22))
			w.nmap = 1u << 22; /* bounded: 16 GiB of directory */
		w.map = calloc(w.nmap ? w.nmap : 1, sizeof(uint64_t));
		if (!w.map) {
			c->err = -ENOMEM;
			return;
		}
	}
	walk_fd(c, &w, fd);
	if (fd->xattr)
		walk_xattr(c, &w, fd);
	c->unwalked |= w.partial;
	if (w.nalloc != fd->nalloc &&
	    ck_prob(c, w.partial ? FIX_DEFER : FIX_SAFE, region,
		    "FD inode: owns %" PRIu64 " blocks, nalloc says %" PRIu64, w.nalloc,
		    fd->nalloc)) {
		fd->nalloc = w.nalloc;
		ck_fixed_how(c, rp_fd_store(c, fd), NULL);
	}
	if (fd->type == VMFS_FT_DIR)
		check_dir(c, &w);
	if (a == c->vh.root_fd && fd->type == VMFS_FT_DIR) {
		c->root_map = w.map;
		c->root_nmap = w.nmap;
		w.map = NULL;
	}
	free(w.map);
}

static void check_fds(struct ck *c)
{
	const struct vmfs_res_region *r = &c->vh.res[VMFS_RT_FD];
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	uint64_t root = ck_res_idx(c, c->vh.root_fd);
	int again = 1;

	if (!fd) {
		c->err = -ENOMEM;
		return;
	}
	if (c->t[VMFS_RT_FD].valid[vmfs_addr_cl(c->vh.root_fd)] &&
	    !ck_bit(c->t[VMFS_RT_FD].alloc, root) &&
	    ck_prob(c, FIX_SAFE, "root directory", "root FD is free in its cluster bitmap")) {
		ck_mark_alloc(c, c->vh.root_fd, 1);
		ck_fixed_how(c, 0, "marked allocated");
	}
	/* The root first (its block map serves the lost+found links), then in
	 * address order; FDs found allocated by a repair are checked in a
	 * further sweep. */
	while (again && !c->err) {
		again = 0;
		for (uint64_t k = 0; k <= c->t[VMFS_RT_FD].nres && !c->err; k++) {
			uint64_t i = k == 0 ? root : k - 1;
			uint64_t a = vmfs_addr_make(VMFS_RT_FD, (uint32_t)(i / r->per_cl),
						    (uint32_t)(i % r->per_cl));

			if ((k && i == root) || !ck_bit(c->t[VMFS_RT_FD].alloc, i) || c->checked[i])
				continue;
			c->checked[i] = 1;
			again = 1;
			c->st->fds_used++;
			fd->type = 0;
			check_fd(c, a, fd);
			if (i == root && (fd->type != VMFS_FT_DIR || fd->parent != a))
				problem(c, "root directory",
					"root FD is not a directory that is its own parent");
		}
	}
	free(fd);
}

/* ---- pass 8: leaks and link counts ------------------------------------------- */

static void check_leaks(struct ck *c)
{
	char region[64], as[48];

	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_PB; t++) {
		const struct ck_type *ct = &c->t[t];
		uint64_t *used = t == VMFS_RT_FB   ? &c->st->fbs_used
				 : t == VMFS_RT_SB ? &c->st->sbs_used
						   : &c->st->pbs_used;

		for (uint64_t i = 0; i < ct->nres; i++) {
			uint32_t per = c->vh.res[t].per_cl;
			uint64_t a = vmfs_addr_make(t, (uint32_t)(i / per), (uint32_t)(i % per));

			if (!ck_bit(ct->alloc, i))
				continue;
			(*used)++;
			if (ck_bit(ct->ref, i))
				continue;
			snprintf(region, sizeof(region), "%s cluster %" PRIu64 " bitmap",
				 vmfs_rtype_name(t), i / per);
			vmfs_addr_str(a, as, sizeof(as));
			if (ck_prob(c, c->unwalked ? FIX_DEFER : FIX_SAFE, region,
				    "%s is allocated but not referenced by any FD", as)) {
				ck_mark_alloc(c, a, 0);
				(*used)--;
				ck_fixed_how(c, 0, "freed");
			}
		}
	}
}

static void check_link(struct ck *c, uint64_t i, uint64_t a, struct vmfs_fd *fd)
{
	uint64_t root = ck_res_idx(c, c->vh.root_fd), want;
	char as[48];

	vmfs_addr_str(a, as, sizeof(as));
	if (fd->flags & VMFS_FDF_UNLINKED) {
		c->st->fds_unlinked++;
		if (c->links[i] || i == root)
			problem(c, as, "FD inode: UNLINKED but named by a directory");
		return;
	}
	if (i != root && c->links[i] == 0) {
		char name[32], how[80];

		snprintf(name, sizeof(name), "#%" PRIu32 ".%" PRIu32, vmfs_addr_cl(a),
			 vmfs_addr_res(a));
		snprintf(how, sizeof(how), "linked into the root directory as '%s'", name);
		if (ck_prob(c, c->incomplete ? FIX_DEFER : FIX_RISKY, as,
			    "FD is allocated but no directory names it (orphan)"))
			ck_fixed_how(c, rp_orphan_link(c, fd, name), how);
		return;
	}
	want = fd->type == VMFS_FT_DIR ? 2 + (uint64_t)c->subdirs[i] : c->links[i];
	if (fd->nlink != want &&
	    ck_prob(c, c->incomplete ? FIX_DEFER : FIX_SAFE, as,
		    "FD inode: link count %" PRIu32 ", expected %" PRIu64, fd->nlink, want)) {
		fd->nlink = (uint32_t)want;
		ck_fixed_how(c, rp_fd_store(c, fd), NULL);
	}
}

static void check_links(struct ck *c, struct vmfs_fd *fd)
{
	const struct vmfs_res_region *r = &c->vh.res[VMFS_RT_FD];

	for (uint64_t i = 0; i < c->t[VMFS_RT_FD].nres && !c->err; i++) {
		uint64_t a = vmfs_addr_make(VMFS_RT_FD, (uint32_t)(i / r->per_cl),
					    (uint32_t)(i % r->per_cl));

		if (!ck_bit(c->t[VMFS_RT_FD].alloc, i) ||
		    ck_read(c, c->buf, vmfs_addr_off(&c->vh, a) + VMFS_UNIT, VMFS_UNIT) ||
		    vmfs_fd_decode(c->buf, &c->vh, fd, NULL, 0) || fd->self != a)
			continue; /* decode problems were reported by check_fds() */
		check_link(c, i, a, fd);
	}
}

/* ---- pass 9: held locks (VMFS_CHECK_HOSTS) ----------------------------------- */

static void check_held(struct ck *c)
{
	const struct ck_slot *s = c->run->slots;
	struct lm_lock_info li;

	for (size_t k = 0; k < c->nheld && !c->err; k++) {
		int alive = 0;

		if (lm_lock_read(c->bd, c->held[k].off, c->vh.max_hosts, &li, NULL, 0) ||
		    li.mode == LM_MODE_FREE)
			continue;
		for (uint32_t h = 0; h < li.nholders; h++) {
			uint32_t sl = li.holders[h].slot;

			alive |= sl < c->run->nslots && s[sl].verdict == HOST_ALIVE &&
				 s[sl].si.gen == li.holders[h].gen;
		}
		if (alive)
			continue;
		if (ck_prob(c, FIX_SAFE, c->held[k].region,
			    "lock held %s by slot %" PRIu32 " generation %" PRIu32
			    ", whose host is %s",
			    lm_mode_name(li.mode), li.holders[0].slot, li.holders[0].gen,
			    li.holders[0].slot < c->run->nslots &&
				    s[li.holders[0].slot].verdict == HOST_DEAD
				? "dead"
				: "gone"))
			ck_fixed_how(c, rp_lock_release(c, c->held[k].off), "released");
	}
}

/* ---- driver ------------------------------------------------------------------ */

/* Slots in use (live or being replayed): a slot a host left stays non-zero
 * (its name and generation) but is free, and is not counted. */
static void count_hosts(struct ck *c)
{
	struct lm_geom g = {c->vh.hb_off, c->vh.max_hosts, c->vh.hb_interval_ms,
			    c->vh.hb_timeout_ms};
	struct lm_slot_info si;

	c->st->hb_used = 0;
	for (uint32_t i = 0; i < c->vh.max_hosts; i++)
		if (lm_slot_read(c->bd, &g, i, &si, NULL, 0) == 0 && !si.never_used &&
		    si.state != LM_SLOT_FREE)
			c->st->hb_used++;
}

static void run_passes(struct ck *c)
{
	struct vmfs_fd *fd;

	check_unit_array(c, c->vh.vol_lock_off, 1, "volume lock", NULL);
	c->in_hb = 1;
	check_unit_array(c, c->vh.hb_off, c->vh.max_hosts, "heartbeat slot", NULL);
	c->in_hb = 0;
	count_hosts(c);
	check_unit_array(c, c->vh.lock_off, c->vh.nlocks, "lock area unit", &c->st->locks_used);
	check_journals(c);
	if (c->run->hosts_done && !c->err)
		check_dead_hosts(c);
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX && !c->err; t++) {
		c->err = alloc_type(c, t);
		if (!c->err)
			check_clusters(c, t);
	}
	if (!c->err)
		check_xtab_refs(c);
	if (!c->err)
		check_fbx_refs(c);
	if (c->err)
		return;
	c->links = calloc(c->t[VMFS_RT_FD].nres, sizeof(uint32_t));
	c->subdirs = calloc(c->t[VMFS_RT_FD].nres, sizeof(uint32_t));
	c->checked = calloc(c->t[VMFS_RT_FD].nres, 1);
	fd = malloc(sizeof(*fd));
	if (!c->links || !c->subdirs || !c->checked || !fd) {
		c->err = -ENOMEM;
		free(fd);
		return;
	}
	check_fds(c);
	if (!c->err && c->ndups)
		rp_dups(c);
	if (!c->err)
		check_leaks(c);
	if (!c->err)
		check_links(c, fd);
	free(fd);
	if (!c->err && repairing(c))
		rp_bitmaps(c);
	if (!c->err && c->run->hosts_done)
		check_held(c);
}

static void free_ck(struct ck *c)
{
	for (unsigned t = 0; t <= VMFS_RT_MAX; t++) {
		free(c->t[t].alloc);
		free(c->t[t].ref);
		free(c->t[t].valid);
		free(c->t[t].dirty);
		free(c->t[t].rebuild);
	}
	free(c->links);
	free(c->subdirs);
	free(c->checked);
	free(c->root_map);
	free(c->dups);
	free(c->held);
	bdev_free(c->buf);
	vmfs_xtab_free(&c->vh);
	free(c);
}

/* One round; returns its operational error (0 otherwise). */
static int round_once(struct ck_run *r, struct vmfs_check_stats *st)
{
	struct ck *c = calloc(1, sizeof(*c));
	int rc;

	memset(st, 0, sizeof(*st));
	if (!c)
		return -ENOMEM;
	c->run = r;
	c->bd = r->bd;
	c->st = st;
	c->buf = bdev_alloc(2 * VMFS_UNIT);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	rc = read_header(c);
	if (rc == 0) {
		r->vh = c->vh;
		r->vh.xt = NULL; /* owned by this round's c->vh */
	}
	if (rc == 0 && r->round == 1 && (r->flags & VMFS_CHECK_HOSTS))
		observe_hosts(c);
	if (rc == 0 && !c->err)
		rc = check_headers(c);
	if (rc == 0 && !c->err)
		run_passes(c);
	r->fixed += c->fixed;
	if (c->fixed && !c->err)
		c->err = bdev_flush(c->bd);
	rc = c->err;
	if (rc == -EUCLEAN)
		rc = 0;
	if (!rc && c->fixed == 0)
		rc = 1; /* nothing changed: this round's findings are final */
	free_ck(c);
	return rc;
}

int vmfs_check(struct bdev *bd, unsigned flags, vmfs_check_cb cb, void *arg,
	       struct vmfs_check_stats *st, unsigned *fixed)
{
	struct ck_run r = {.bd = bd, .flags = flags, .cb = cb, .arg = arg};
	int rc = 0;

	memset(st, 0, sizeof(*st));
	*fixed = 0;
	for (r.round = 1; r.round <= MAX_ROUNDS; r.round++) {
		rc = round_once(&r, st);
		if (rc)
			break;
	}
	st->rounds = (uint32_t)(r.round > MAX_ROUNDS ? MAX_ROUNDS : r.round);
	rp_run_end(&r);
	*fixed = r.fixed;
	if (cb && st->problems > MAX_REPORTED) {
		char more[64];

		snprintf(more, sizeof(more), "%" PRIu64 " more problems not listed",
			 st->problems - MAX_REPORTED);
		cb(arg, "volume", more);
	}
	if (rc < 0)
		return rc;
	return (int)(st->problems > INT32_MAX ? INT32_MAX : st->problems);
}
