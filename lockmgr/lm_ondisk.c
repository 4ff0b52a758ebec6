/*
 * lm_ondisk.c - encode/decode of heartbeat slot and lock records (layouts in
 * lm_int.h), validation for fsck/info, one-line descriptions.
 *
 * Rules: never cast a disk buffer to a struct; every field read from disk is
 * checked before use; an all-zero unit is a valid "free, never used" record
 * (mkfs only zeroes the regions); anything else that is not exactly a record
 * we could have written is -EUCLEAN with a reason naming the field.
 */
#include "lm_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "le.h"

static int bad(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

int lm_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

static void put_str(uint8_t *dst, const char *s, size_t len)
{
	size_t n = strnlen(s, len - 1);

	memset(dst, 0, len);
	memcpy(dst, s, n);
}

/* A NUL-padded printable string field: no bytes after the first NUL. */
static int get_str(const uint8_t *src, size_t len, char *out)
{
	size_t n = strnlen((const char *)src, len);

	if (n == len)
		return -1; /* not terminated */
	for (size_t i = 0; i < n; i++)
		if (src[i] < 0x20 || src[i] > 0x7e)
			return -1;
	if (!lm_is_zero(src + n, len - n))
		return -1;
	memcpy(out, src, n);
	out[n] = '\0';
	return 0;
}

static void seal(uint8_t *rec, size_t crc_off)
{
	le32_put(rec + crc_off, crc32c(0, rec, crc_off));
}

void lm_slot_encode(const struct lm_slot_info *s, uint8_t *rec)
{
	memset(rec, 0, LM_REC_SIZE);
	le32_put(rec + SL_MAGIC, LM_SLOT_MAGIC);
	le16_put(rec + SL_VERSION, LM_VERSION);
	le16_put(rec + SL_STATE, (uint16_t)s->state);
	le32_put(rec + SL_INDEX, s->index);
	le32_put(rec + SL_GEN, s->gen);
	le64_put(rec + SL_COUNTER, s->counter);
	memcpy(rec + SL_UUID, s->uuid, 16);
	put_str(rec + SL_HOST, s->hostname, LM_HOSTNAME_MAX);
	if (s->state == LM_SLOT_REPLAYING) {
		le32_put(rec + SL_REPL_SLOT, s->replayer_slot);
		le32_put(rec + SL_REPL_GEN, s->replayer_gen);
		le32_put(rec + SL_DEAD_GEN, s->dead_gen);
	}
	le32_put(rec + SL_INTERVAL, s->interval_ms);
	le32_put(rec + SL_TIMEOUT, s->timeout_ms);
	memcpy(rec + SL_MACHINE, s->machine, 16);
	seal(rec, SL_CRC);
}

/* index: expected slot index, or UINT32_MAX when unknown (fsck of a unit). */
int lm_slot_decode(const uint8_t *rec, uint32_t index, uint32_t nslots, struct lm_slot_info *s,
		   char *why, size_t whylen)
{
	uint32_t magic = le32_get(rec + SL_MAGIC), v, version;

	memset(s, 0, sizeof(*s));
	s->index = index;
	if (lm_is_zero(rec, LM_REC_SIZE)) {
		s->never_used = 1;
		s->state = LM_SLOT_FREE;
		return 0;
	}
	if (magic != LM_SLOT_MAGIC)
		return bad(why, whylen, "heartbeat slot: bad magic 0x%08x", magic);
	if (le32_get(rec + SL_CRC) != crc32c(0, rec, SL_CRC))
		return bad(why, whylen, "heartbeat slot: bad CRC");
	version = le16_get(rec + SL_VERSION);
	if (version != LM_VERSION && version != LM_VERSION_1)
		return bad(why, whylen, "heartbeat slot: unknown version %u", version);
	v = le16_get(rec + SL_STATE);
	if (v > LM_SLOT_REPLAYING)
		return bad(why, whylen, "heartbeat slot: bad state %u", v);
	s->state = (enum lm_slot_state)v;
	v = le32_get(rec + SL_INDEX);
	if (v >= nslots || (index != UINT32_MAX && v != index))
		return bad(why, whylen, "heartbeat slot %u: records index %u", index, v);
	s->index = v;
	s->gen = le32_get(rec + SL_GEN);
	if (s->gen == 0)
		return bad(why, whylen, "heartbeat slot %u: generation 0 in a written slot", v);
	s->counter = le64_get(rec + SL_COUNTER);
	memcpy(s->uuid, rec + SL_UUID, 16);
	if (get_str(rec + SL_HOST, LM_HOSTNAME_MAX, s->hostname))
		return bad(why, whylen, "heartbeat slot %u: hostname not a NUL-padded string", v);
	s->replayer_slot = le32_get(rec + SL_REPL_SLOT);
	s->replayer_gen = le32_get(rec + SL_REPL_GEN);
	s->dead_gen = le32_get(rec + SL_DEAD_GEN);
	if (s->state == LM_SLOT_REPLAYING) {
		/* replayer_slot == the slot itself: reclaimed by a joiner that
		 * replays its dead owner and then keeps the slot (replayer_gen ==
		 * gen; the record heartbeats meanwhile). Generations wrap (0 is
		 * skipped), so the dead one need only differ. */
		if (s->replayer_slot >= nslots ||
		    (s->replayer_slot == v && s->replayer_gen != s->gen))
			return bad(why, whylen, "heartbeat slot %u: bad replayer slot %u", v,
				   s->replayer_slot);
		if (s->replayer_gen == 0 || s->dead_gen == 0 || s->dead_gen == s->gen)
			return bad(why, whylen, "heartbeat slot %u: bad replay generations", v);
	} else if (s->replayer_slot || s->replayer_gen || s->dead_gen) {
		return bad(why, whylen, "heartbeat slot %u: replay fields set in state %s", v,
			   lm_slot_state_name(s->state));
	}
	s->interval_ms = le32_get(rec + SL_INTERVAL);
	s->timeout_ms = le32_get(rec + SL_TIMEOUT);
	if (version == LM_VERSION)
		memcpy(s->machine, rec + SL_MACHINE, 16);
	if (!lm_is_zero(rec + SL_RESERVED1, SL_MACHINE - SL_RESERVED1) ||
	    (version == LM_VERSION_1 && !lm_is_zero(rec + SL_MACHINE, 16)) ||
	    !lm_is_zero(rec + SL_RESERVED, SL_CRC - SL_RESERVED))
		return bad(why, whylen, "heartbeat slot %u: reserved bytes not zero", v);
	return 0;
}

void lm_recov_encode(const struct lm_recovery *r, uint8_t *rec)
{
	memset(rec, 0, LM_REC_SIZE);
	le32_put(rec + RC_MAGIC, LM_RECOV_MAGIC);
	le16_put(rec + RC_VERSION, LM_RECOV_VERSION);
	le32_put(rec + RC_DEAD_GEN, r->dead_gen);
	le32_put(rec + RC_BY_SLOT, r->by_slot);
	le32_put(rec + RC_BY_GEN, r->by_gen);
	le32_put(rec + RC_REPLAYED, r->replayed);
	le64_put(rec + RC_TIME, r->time_ms);
	memcpy(rec + RC_DEAD_UUID, r->dead_uuid, 16);
	put_str(rec + RC_DEAD_HOST, r->dead_host, LM_HOSTNAME_MAX);
	memcpy(rec + RC_BY_UUID, r->by_uuid, 16);
	put_str(rec + RC_BY_HOST, r->by_host, LM_HOSTNAME_MAX);
	seal(rec, RC_CRC);
}

int lm_recov_decode(const uint8_t *rec, uint32_t nslots, struct lm_recovery *r, char *why,
		    size_t whylen)
{
	uint32_t magic = le32_get(rec + RC_MAGIC), v;

	memset(r, 0, sizeof(*r));
	if (lm_is_zero(rec, LM_REC_SIZE))
		return 0;
	if (magic != LM_RECOV_MAGIC)
		return bad(why, whylen, "recovery record: bad magic 0x%08x", magic);
	if (le32_get(rec + RC_CRC) != crc32c(0, rec, RC_CRC))
		return bad(why, whylen, "recovery record: bad CRC");
	v = le16_get(rec + RC_VERSION);
	if (v != LM_RECOV_VERSION)
		return bad(why, whylen, "recovery record: unknown version %u", v);
	if (le16_get(rec + RC_VERSION + 2) || !lm_is_zero(rec + RC_RESERVED, RC_CRC - RC_RESERVED))
		return bad(why, whylen, "recovery record: reserved bytes not zero");
	r->dead_gen = le32_get(rec + RC_DEAD_GEN);
	r->by_slot = le32_get(rec + RC_BY_SLOT);
	r->by_gen = le32_get(rec + RC_BY_GEN);
	if (r->dead_gen == 0 || r->by_gen == 0 || r->by_slot >= nslots)
		return bad(why, whylen, "recovery record: bad generations or slot %u", r->by_slot);
	r->replayed = le32_get(rec + RC_REPLAYED);
	r->time_ms = le64_get(rec + RC_TIME);
	memcpy(r->dead_uuid, rec + RC_DEAD_UUID, 16);
	memcpy(r->by_uuid, rec + RC_BY_UUID, 16);
	if (get_str(rec + RC_DEAD_HOST, LM_HOSTNAME_MAX, r->dead_host) ||
	    get_str(rec + RC_BY_HOST, LM_HOSTNAME_MAX, r->by_host))
		return bad(why, whylen, "recovery record: hostname not a NUL-padded string");
	r->valid = 1;
	return 0;
}

void lm_lock_encode(const struct lm_lock_info *l, uint8_t *rec)
{
	memset(rec, 0, LM_REC_SIZE);
	le32_put(rec + LK_MAGIC, LM_LOCK_MAGIC);
	le16_put(rec + LK_VERSION, LM_LOCK_VERSION);
	le16_put(rec + LK_MODE, (uint16_t)l->mode);
	le64_put(rec + LK_GEN, l->gen);
	le64_put(rec + LK_ADDR, l->addr);
	le32_put(rec + LK_NHOLD, l->nholders);
	if (l->mode != LM_MODE_FREE)
		le32_put(rec + LK_WANTED, l->wanted);
	if (l->mode == LM_MODE_EX)
		memcpy(rec + LK_UUID, l->owner_uuid, 16);
	put_str(rec + LK_NAME, l->name, LM_NAME_MAX);
	for (uint32_t i = 0; i < l->nholders && i < LM_MAX_HOLDERS; i++) {
		le16_put(rec + LK_HSLOT + 2 * i, (uint16_t)l->holders[i].slot);
		le32_put(rec + LK_HGEN + 4 * i, l->holders[i].gen);
	}
	seal(rec, LK_CRC);
}

/* Holder i of a version 1 or 2 record. */
static void holder_get(const uint8_t *rec, unsigned version, uint32_t i, uint32_t *slot,
		       uint32_t *gen)
{
	if (version == LM_LOCK_VERSION_1) {
		*slot = le32_get(rec + LK1_HOLDERS + 8 * i);
		*gen = le32_get(rec + LK1_HOLDERS + 8 * i + 4);
	} else {
		*slot = le16_get(rec + LK_HSLOT + 2 * i);
		*gen = le32_get(rec + LK_HGEN + 4 * i);
	}
}

static int lock_check_holders(const uint8_t *rec, unsigned version, struct lm_lock_info *l,
			      uint32_t nslots, char *why, size_t whylen)
{
	uint32_t max = version == LM_LOCK_VERSION_1 ? LK1_MAX_HOLDERS : LM_MAX_HOLDERS;

	for (uint32_t i = 0; i < max; i++) {
		uint32_t slot, gen;

		holder_get(rec, version, i, &slot, &gen);
		if (i >= l->nholders) {
			if (slot || gen)
				return bad(why, whylen,
					   "lock record: unused holder entry %u not zero", i);
			continue;
		}
		if (slot >= nslots || gen == 0)
			return bad(why, whylen, "lock record: holder %u names slot %u gen %u", i,
				   slot, gen);
		for (uint32_t j = 0; j < i; j++)
			if (l->holders[j].slot == slot)
				return bad(why, whylen, "lock record: slot %u listed twice", slot);
		l->holders[i].slot = slot;
		l->holders[i].gen = gen;
	}
	return 0;
}

/* addr: expected unit address, or UINT64_MAX when unknown. */
int lm_lock_decode(const uint8_t *rec, uint64_t addr, uint32_t nslots, struct lm_lock_info *l,
		   char *why, size_t whylen)
{
	uint32_t magic = le32_get(rec + LK_MAGIC), v, version;

	memset(l, 0, sizeof(*l));
	l->addr = addr;
	if (lm_is_zero(rec, LM_REC_SIZE)) {
		l->never_used = 1;
		l->mode = LM_MODE_FREE;
		return 0;
	}
	if (magic != LM_LOCK_MAGIC)
		return bad(why, whylen, "lock record: bad magic 0x%08x", magic);
	if (le32_get(rec + LK_CRC) != crc32c(0, rec, LK_CRC))
		return bad(why, whylen, "lock record: bad CRC");
	version = le16_get(rec + LK_VERSION);
	if (version != LM_LOCK_VERSION && version != LM_LOCK_VERSION_1)
		return bad(why, whylen, "lock record: unknown version %u", version);
	v = le16_get(rec + LK_MODE);
	if (v > LM_MODE_MW)
		return bad(why, whylen, "lock record: bad mode %u", v);
	l->mode = (enum lm_mode)v;
	l->gen = le64_get(rec + LK_GEN);
	l->addr = le64_get(rec + LK_ADDR);
	if (addr != UINT64_MAX && l->addr != addr)
		return bad(why, whylen, "lock record: records address 0x%llx",
			   (unsigned long long)l->addr);
	l->nholders = le32_get(rec + LK_NHOLD);
	v = version == LM_LOCK_VERSION_1 ? LK1_MAX_HOLDERS : LM_MAX_HOLDERS;
	if (l->nholders > v)
		return bad(why, whylen, "lock record: %u holders (max %u)", l->nholders, v);
	if ((l->mode == LM_MODE_FREE && l->nholders) ||
	    (l->mode == LM_MODE_EX && l->nholders != 1) || (l->mode > LM_MODE_EX && !l->nholders))
		return bad(why, whylen, "lock record: %u holders in mode %s", l->nholders,
			   lm_mode_name(l->mode));
	if (!lm_is_zero(rec + LK_RESERVED, LK_CRC - LK_RESERVED))
		return bad(why, whylen, "lock record: reserved bytes not zero");
	l->wanted = le32_get(rec + LK_WANTED);
	if (l->wanted && (l->mode == LM_MODE_FREE || (nslots && l->wanted > nslots)))
		return bad(why, whylen, "lock record: wanted by slot %u in mode %s (%u slots)",
			   l->wanted - 1, lm_mode_name(l->mode), nslots);
	memcpy(l->owner_uuid, rec + LK_UUID, 16);
	if (l->mode != LM_MODE_EX && !lm_is_zero(l->owner_uuid, 16))
		return bad(why, whylen, "lock record: owner UUID set in mode %s",
			   lm_mode_name(l->mode));
	if (get_str(rec + LK_NAME, LM_NAME_MAX, l->name))
		return bad(why, whylen, "lock record: name not a NUL-padded string");
	return lock_check_holders(rec, version, l, nslots, why, whylen);
}

int lm_unit_check(const void *rec, size_t len, char *why, size_t whylen)
{
	struct lm_slot_info s;
	struct lm_lock_info l;

	if (why && whylen)
		why[0] = '\0';
	if (len < LM_REC_SIZE)
		return bad(why, whylen, "lock unit: %zu bytes, need %u", len, LM_REC_SIZE);
	if (le32_get(rec) == LM_SLOT_MAGIC && len >= LM_RECOV_OFF + LM_REC_SIZE) {
		/* a heartbeat slot may carry its recovery record at 0x200 */
		const uint8_t *u = rec;
		struct lm_recovery r;
		int rc = lm_slot_decode(rec, UINT32_MAX, LM_MAX_SLOTS, &s, why, whylen);

		if (rc == 0)
			rc = lm_recov_decode(u + LM_RECOV_OFF, LM_MAX_SLOTS, &r, why, whylen);
		if (rc == 0 &&
		    !lm_is_zero(u + LM_RECOV_OFF + LM_REC_SIZE, len - LM_RECOV_OFF - LM_REC_SIZE))
			rc = bad(why, whylen,
				 "heartbeat slot: bytes after the records are not zero");
		return rc;
	}
	if (!lm_is_zero((const uint8_t *)rec + LM_REC_SIZE, len - LM_REC_SIZE))
		return bad(why, whylen, "lock unit: bytes after the record are not zero");
	if (le32_get(rec) == LM_SLOT_MAGIC)
		return lm_slot_decode(rec, UINT32_MAX, LM_MAX_SLOTS, &s, why, whylen);
	return lm_lock_decode(rec, UINT64_MAX, LM_MAX_SLOTS, &l, why, whylen);
}

int lm_slot_describe(const void *rec, size_t len, char *out, size_t outlen)
{
	struct lm_slot_info s;
	char why[128];
	int rc;

	if (len < LM_REC_SIZE)
		return bad(out, outlen, "corrupt: unit of %zu bytes", len);
	rc = lm_slot_decode(rec, UINT32_MAX, LM_MAX_SLOTS, &s, why, sizeof(why));
	if (rc < 0)
		return bad(out, outlen, "corrupt: %s", why);
	if (s.never_used)
		snprintf(out, outlen, "free (never used)");
	else if (s.state == LM_SLOT_FREE)
		snprintf(out, outlen, "free gen=%u last-host=%s", s.gen, s.hostname);
	else if (s.state == LM_SLOT_LIVE)
		snprintf(out, outlen, "live host=%s gen=%u counter=%llu", s.hostname, s.gen,
			 (unsigned long long)s.counter);
	else if (s.replayer_slot == s.index)
		snprintf(out, outlen,
			 "being-replayed host=%s dead-gen=%u by its new owner (gen %u)", s.hostname,
			 s.dead_gen, s.gen);
	else
		snprintf(out, outlen, "being-replayed host=%s dead-gen=%u by slot %u gen %u",
			 s.hostname, s.dead_gen, s.replayer_slot, s.replayer_gen);
	if (len >= LM_RECOV_OFF + LM_REC_SIZE) {
		struct lm_recovery r;
		size_t n = strlen(out);
		char when[32];

		if (lm_recov_decode((const uint8_t *)rec + LM_RECOV_OFF, LM_MAX_SLOTS, &r, why,
				    sizeof(why)) < 0)
			snprintf(out + n, outlen - n, "; recovery record corrupt: %s", why);
		else if (r.valid)
			snprintf(out + n, outlen - n,
				 "; last recovery: %s gen %u by %s (slot %u gen %u) at %s, %u "
				 "journal transaction(s) replayed",
				 r.dead_host, r.dead_gen, r.by_host, r.by_slot, r.by_gen,
				 lm_time_str(r.time_ms, when, sizeof(when)), r.replayed);
	}
	return 0;
}

const char *lm_mode_name(enum lm_mode mode)
{
	switch (mode) {
	case LM_MODE_FREE: return "free";
	case LM_MODE_EX: return "exclusive";
	case LM_MODE_SH: return "read-only";
	case LM_MODE_MW: return "multi-writer";
	}
	return "?";
}

const char *lm_slot_state_name(enum lm_slot_state st)
{
	switch (st) {
	case LM_SLOT_FREE: return "free";
	case LM_SLOT_LIVE: return "live";
	case LM_SLOT_REPLAYING: return "being-replayed";
	}
	return "?";
}

const char *lm_time_str(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, len, "%llu ms", (unsigned long long)ms);
	return out;
}

void lm_uuid_str(const uint8_t u[16], char *out)
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}
