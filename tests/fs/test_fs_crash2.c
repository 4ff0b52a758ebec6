/*
 * test_fs_crash2.c - crash at every flush of a two-host metadata workload
 * (issue 9, "every crash point").
 *
 * Two hosts share one image: the victim runs on crash:flush=N,mode=random
 * (at its Nth flush every unflushed sector is kept, dropped or garbled, at
 * random per sector, so multi-sector writes tear at sector boundaries), the
 * witness on the plain image. Each step the witness makes one change (its
 * own directory /w, and entries w-* in the shared directory /s), then the
 * victim makes one (in /v and v-* in /s): create, write + fsync, extend
 * through sub-blocks to file blocks, rename (within and across
 * directories), unlink of a file it holds open, mkdir, rmdir, truncate,
 * fallocate (allocate, punch, zero), xattr set/replace/remove, link,
 * symlink, chmod. After the crash the witness takes the victim over
 * (journal replay through the lock manager) and then:
 *  - the victim's part of the tree (names, modes, link counts, sizes,
 *    content CRCs, xattrs) equals the reference state after the last step
 *    that returned, or after the one that was running;
 *  - the witness's part equals the reference after its last step: nothing
 *    another host committed has gone;
 *  - the witness can still change the shared directory;
 *  - fsck finds nothing wrong.
 * CRASH2_STRIDE (default 1) visits every stride-th flush point; CRASH2_FIRST
 * the first one. ./run test runs a stride, ./run stress (label stress) all.
 */
#include "fstest.h"

#include <inttypes.h>

#include "crc32c.h"

#define NSTEPS 64

struct names {
	int n;
	char v[256][64];
};

static int collect(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct names *ns = arg;

	(void)type;
	(void)ino;
	if (strcmp(name, ".") && strcmp(name, "..") && ns->n < 256)
		snprintf(ns->v[ns->n++], 64, "%s", name);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static uint32_t xattr_crc(struct vmfs *fs, const char *p)
{
	char list[4096], val[4096];
	ssize_t n = vmfs_listxattr(fs, p, list, sizeof(list));
	uint32_t crc = 0;

	for (ssize_t o = 0; n > 0 && o < n; o += (ssize_t)strlen(list + o) + 1) {
		ssize_t v = vmfs_getxattr(fs, p, list + o, val, sizeof(val));

		crc = crc32c(crc, list + o, strlen(list + o));
		if (v > 0)
			crc = crc32c(crc, val, (size_t)v);
	}
	return n < 0 ? (uint32_t)n : crc;
}

/* Describes the tree under path; in /s only names starting with `own`. */
static int walk(struct vmfs *fs, const char *path, const char *own, struct snap *sn)
{
	struct names *ns = calloc(1, sizeof(*ns));
	int rc = ns ? vmfs_readdir(fs, path, collect, ns) : -ENOMEM;

	if (!rc)
		qsort(ns->v, (size_t)ns->n, sizeof(ns->v[0]), cmp);
	for (int i = 0; !rc && i < ns->n; i++) {
		char p[600], link[256] = "";
		struct vmfs_stat st;
		uint32_t crc = 0;

		if (!strcmp(path, "/s") && strncmp(ns->v[i], own, strlen(own)))
			continue;
		snprintf(p, sizeof(p), "%s/%s", strcmp(path, "/") ? path : "", ns->v[i]);
		rc = vmfs_getattr(fs, p, &st);
		if (rc)
			break;
		if (S_ISREG(st.mode)) {
			struct vmfs_file *f;
			uint8_t *buf = malloc(st.size ? st.size : 1);

			rc = vmfs_open(fs, p, O_RDONLY, 0, &f);
			if (!rc) {
				rc = vmfs_read(f, buf, st.size, 0) == (ssize_t)st.size ? 0 : -EIO;
				vmfs_close(f);
			}
			crc = crc32c(0, buf, st.size);
			free(buf);
		} else if (S_ISLNK(st.mode)) {
			rc = vmfs_readlink(fs, p, link, sizeof(link)) < 0 ? -EIO : 0;
		}
		snap_add(sn, "%s mode=%o nlink=%u size=%" PRIu64 " crc=%08x x=%08x %s\n", p,
			 st.mode, st.nlink, st.size, crc, xattr_crc(fs, p), link);
		if (!rc && S_ISDIR(st.mode))
			rc = walk(fs, p, own, sn);
	}
	free(ns);
	return rc;
}

static char *snapshot(struct vmfs *fs, const char *top, const char *own)
{
	struct snap sn = {0};
	int rc;

	snap_add(&sn, "%s\n", top);
	rc = walk(fs, top, own, &sn);
	if (!rc)
		rc = walk(fs, "/s", own, &sn);
	if (rc)
		fprintf(stderr, "walk: %s: %s\n", vmfs_strerror(rc), vmfs_errmsg(fs));
	assert_int_equal(rc, 0);
	return sn.s;
}

static uint8_t data[1u << 20];

static int wr(struct vmfs *fs, const char *p, int flags, size_t n, uint64_t off, int sync)
{
	struct vmfs_file *f;
	int rc = vmfs_open(fs, p, flags, 0644, &f);

	if (rc)
		return rc;
	if (n)
		rc = (int)vmfs_write(f, data + off % 4096, n, off);
	if (rc >= 0 && sync)
		rc = vmfs_fsync(f);
	vmfs_close(f);
	return rc < 0 ? rc : 0;
}

static int falloc(struct vmfs *fs, const char *p, int mode, uint64_t off, uint64_t len)
{
	struct vmfs_file *f;
	int rc = vmfs_open(fs, p, O_RDWR, 0, &f);

	if (rc)
		return rc;
	rc = vmfs_fallocate(f, mode, off, len);
	vmfs_close(f);
	return rc;
}

/* The file a host holds open across steps (unlinked while open). */
static struct vmfs_file *held[2];

/* One step of host `h` ('v' victim in /v, 'w' witness in /w): one
 * committed change each (so after a crash the tree is the state before or
 * after the step), or none visible in the tree (writes to an unlinked open
 * file). Names in the shared directory /s start with the host's letter.
 * After 32 steps the host's part of the tree is empty again; the second
 * cycle uses other sizes. Returns 0 or the step's error. */
static int step(struct vmfs *fs, char h, int i)
{
	char f[32], g[32], sub[32], df[40], ss[32], st[32];
	const char *d = h == 'v' ? "/v" : "/w";
	int hi = h == 'v', r = i / 32, rc;

	snprintf(f, sizeof(f), "%s/f", d);
	snprintf(g, sizeof(g), "%s/g", d);
	snprintf(sub, sizeof(sub), "%s/sub", d);
	snprintf(df, sizeof(df), "%s/sub/f", d);
	snprintf(ss, sizeof(ss), "/s/%c-s", h);
	snprintf(st, sizeof(st), "/s/%c-t", h);
	switch (i % 32) {
	case 0: return wr(fs, f, O_CREAT | O_EXCL | O_RDWR, 0, 0, 0);
	case 1: return wr(fs, f, O_RDWR, 100, 0, 0);
	case 2: return wr(fs, f, O_RDWR, 3000 + 100 * (size_t)r, 100, 1); /* inline -> SB */
	case 3: return vmfs_mkdir(fs, sub, 0750);
	case 4: return wr(fs, ss, O_CREAT | O_EXCL | O_RDWR, 0, 0, 0);
	case 5: return wr(fs, ss, O_RDWR, 5000, 0, 1);
	case 6: return wr(fs, f, O_RDWR, 70000 + 4096 * (size_t)r, 8000, 1); /* SB -> FB */
	case 7: return vmfs_setxattr(fs, f, "user.tag", "one", 3, VMFS_XATTR_CREATE);
	case 8: return vmfs_rename(fs, f, df); /* across directories */
	case 9: return vmfs_symlink(fs, df, f);
	case 10: return vmfs_link(fs, ss, g);
	case 11: return vmfs_chmod(fs, ss, 0600);
	case 12: return vmfs_truncate(fs, ss, 12345 + (uint64_t)r);
	case 13: return vmfs_setxattr(fs, ss, "user.s", "value", 5, 0);
	case 14: return falloc(fs, df, 0, 0, 3u << 20);
	case 15:
		return falloc(fs, df, VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE, 1u << 20,
			      1u << 20);
	case 16: return falloc(fs, df, VMFS_FALLOC_ZERO_RANGE, 5000, 9000);
	case 17: return vmfs_removexattr(fs, ss, "user.s");
	case 18: /* unlink of a file held open */
		rc = vmfs_open(fs, df, O_RDWR, 0, &held[hi]);
		return rc ? rc : vmfs_unlink(fs, df);
	case 19: rc = (int)vmfs_write(held[hi], data, 20000, 0); return rc < 0 ? rc : 0;
	case 20:
		rc = vmfs_close(held[hi]);
		held[hi] = NULL;
		return rc;
	case 21: return vmfs_rename(fs, ss, st);
	case 22: return vmfs_unlink(fs, g);
	case 23: return vmfs_rmdir(fs, sub);
	case 24: return vmfs_mkdir(fs, sub, 0700);
	case 25: return vmfs_setxattr(fs, sub, "user.dir", "d", 1, 0);
	case 26: return wr(fs, st, O_RDWR, 100000, 4096, 1); /* one write chunk: one commit */
	case 27: return vmfs_truncate(fs, st, 0);
	case 28: return vmfs_unlink(fs, st);
	case 29: return vmfs_unlink(fs, f);
	case 30: return vmfs_rmdir(fs, sub);
	default: return vmfs_chmod(fs, d, r ? 0755 : 0711);
	}
}

/* Returns whether the step's error is part of the workload (the same in
 * every run: ops on names that do not exist at that point). Recorded by the
 * reference run, compared by the crash runs. */
static int results[2][NSTEPS];

static void prepare(const char *img)
{
	struct vmfs *fs = t_mount(img, "prep");

	assert_int_equal(vmfs_mkdir(fs, "/v", 0755), 0);
	assert_int_equal(vmfs_mkdir(fs, "/w", 0755), 0);
	assert_int_equal(vmfs_mkdir(fs, "/s", 0777), 0);
	assert_int_equal(vmfs_umount(fs), 0);
}

static char *vsnaps[NSTEPS + 1], *wsnaps[NSTEPS + 1];

static void reference(const char *img)
{
	struct vmfs *v, *w;

	prepare(img);
	w = t_mount(img, "witness");
	v = t_mount(img, "victim");
	vsnaps[0] = snapshot(v, "/v", "v-");
	wsnaps[0] = snapshot(w, "/w", "w-");
	for (int i = 0; i < NSTEPS; i++) {
		results[1][i] = step(w, 'w', i);
		wsnaps[i + 1] = snapshot(w, "/w", "w-");
		results[0][i] = step(v, 'v', i);
		vsnaps[i + 1] = snapshot(v, "/v", "v-");
	}
	assert_int_equal(vmfs_umount(v), 0);
	assert_int_equal(vmfs_umount(w), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* got equals want, except that at most one line may differ in its crc=
 * field only: the data of the file the running step overwrote in place
 * (not journaled, not fsync'd yet: partly written, as in any file system
 * without data journaling). Metadata must match exactly. */
static int same_but_data(const char *got, const char *want)
{
	int diffs = 0;

	while (*got && *want) {
		size_t lg = strcspn(got, "\n"), lw = strcspn(want, "\n");
		const char *cg = strstr(got, " crc="), *cw = strstr(want, " crc=");

		if (lg != lw || strncmp(got, want, lg)) {
			if (++diffs > 1 || lg != lw || !cg || !cw || cg - got != cw - want ||
			    (size_t)(cg - got) + 13 > lg ||
			    strncmp(got, want, (size_t)(cg - got)) ||
			    strncmp(cg + 13, cw + 13, lg - (size_t)(cg - got) - 13))
				return 0;
		}
		got += lg + (got[lg] == '\n');
		want += lw + (want[lw] == '\n');
	}
	return !*got && !*want;
}

/* One crash point; returns 1 if the victim crashed before the end. */
static int run_case(const char *img, unsigned n, unsigned seed, int *replays)
{
	struct vmfs_mount_opts vo = {.hostname = "victim"};
	struct vmfs_mount_opts wo = {.hostname = "witness", .no_recover = 1};
	char uri[4300], *vs, *ws;
	struct vmfs *v, *w;
	int done = 0, rc = 0, match = 0;

	t_mkfs("crash2", 256ull << 20, 0);
	prepare(img);
	assert_int_equal(vmfs_mount(img, &wo, &w), 0);
	snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, seed, img);
	rc = vmfs_mount(uri, &vo, &v);
	if (rc) {
		assert_int_equal(vmfs_umount(w), 0);
		assert_int_equal(t_fsck(img), 0);
		return 1;
	}
	held[0] = held[1] = NULL;
	for (; done < NSTEPS; done++) {
		rc = step(w, 'w', done);
		if (rc != results[1][done])
			fprintf(stderr, "flush=%u: witness step %d: %d, reference %d (%s)\n", n,
				done, rc, results[1][done], vmfs_errmsg(w));
		assert_int_equal(rc, results[1][done]);
		rc = step(v, 'v', done);
		if (rc != results[0][done])
			break; /* crashed (or fenced) in this step */
	}
	if (held[1])
		vmfs_close(held[1]);
	held[1] = NULL;
	vmfs_umount(v); /* fails: its device is dead; frees what it had */
	held[0] = NULL;
	/* the witness takes the victim over (waits for it to be judged dead) */
	rc = vmfs_recover(w);
	if (rc < 0)
		fprintf(stderr, "flush=%u seed=%u: recover: %s: %s\n", n, seed, vmfs_strerror(rc),
			vmfs_errmsg(w));
	assert_true(rc >= 0);
	*replays += rc;
	vs = snapshot(w, "/v", "v-");
	ws = snapshot(w, "/w", "w-");
	for (int k = done; k <= done + 1 && k <= NSTEPS; k++)
		match |= same_but_data(vs, vsnaps[k]);
	if (!match)
		fprintf(stderr, "flush=%u seed=%u: victim after %d steps:\n%s\nexpected:\n%s\n", n,
			seed, done, vs, vsnaps[done]);
	assert_true(match);
	if (strcmp(ws, wsnaps[done + (done < NSTEPS)]))
		fprintf(stderr, "flush=%u: witness lost committed work:\n%s\nexpected:\n%s\n", n,
			ws, wsnaps[done + (done < NSTEPS)]);
	assert_string_equal(ws, wsnaps[done + (done < NSTEPS)]);
	assert_int_equal(wr(w, "/s/w-after", O_CREAT | O_RDWR, 10, 0, 1), 0);
	free(vs);
	free(ws);
	assert_int_equal(vmfs_umount(w), 0);
	if (t_fsck(img)) {
		fprintf(stderr, "flush=%u seed=%u: fsck found problems\n", n, seed);
		fail();
	}
	return done < NSTEPS;
}

static unsigned env_u(const char *name, unsigned def)
{
	const char *s = getenv(name);

	return s && *s ? (unsigned)strtoul(s, NULL, 10) : def;
}

static void test_crash_every_flush(void **state)
{
	const char *img;
	unsigned stride = env_u("CRASH2_STRIDE", 1), n = env_u("CRASH2_FIRST", 1);
	int cases = 0, replays = 0, crashed = 1;

	(void)state;
	/* the witness waits for the victim to be judged dead each time; a
	 * shorter lease could fence the witness on a loaded machine */
	t_hb_int = 200;
	t_hb_tmo = 1600;
	t_fill(data, sizeof(data), 3);
	img = t_mkfs("crash2", 256ull << 20, 0);
	reference(img);
	for (; crashed && n < 2000; n += stride) {
		crashed = run_case(img, n, n * 13 + 5, &replays);
		cases++;
	}
	fprintf(
	    stderr,
	    "crash2: %d crash points (every %u from flush %u; the workload ends before flush %u), "
	    "%d journals replayed\n",
	    cases, stride, env_u("CRASH2_FIRST", 1), n - stride, replays);
	assert_true(n - stride >= 200); /* the workload is at least 200 flushes long */
	assert_true(replays > 0);
	for (int i = 0; i <= NSTEPS; i++) {
		free(vsnaps[i]);
		free(wsnaps[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_every_flush),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
