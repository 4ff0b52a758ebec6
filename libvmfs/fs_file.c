/*
 * fs_file.c - FD inode blocks, block mapping and file data.
 *
 * Addressing modes (format.h): INLINE (data in the inode block, <= 3840
 * bytes), SB (256 direct 8 KiB sub-blocks, <= 2 MiB), FB (256 direct file
 * blocks, 128 single-indirect and 96 double-indirect pointer blocks of 504
 * entries). A file starts INLINE; a write or extension past 3840 bytes
 * converts it to SB (when the new end fits a quarter of a file block) or
 * FB; an SB file growing past a quarter of a file block (at most 2 MiB)
 * converts to FB. A conversion copies the data into the new blocks and
 * frees the old ones in the same transaction. A file truncated to 0 with
 * nothing allocated returns to INLINE. A symlink is written once, by the
 * transaction that creates it (fs_write_new(): inline up to 3840 bytes,
 * one sub-block up to 4095) and never changes; special files (FIFOs,
 * devices, sockets) stay INLINE and empty. Directories are always SB (their
 * blocks are journaled metadata, and the journal accepts only targets
 * before the data area).
 *
 * Data is not journaled. A newly allocated block is written in full (the
 * new data, zeroes around it) before the transaction that links it commits,
 * so a crash exposes either the old hole or the complete new block. Holes
 * (address 0) and TBZ blocks read as zeroes.
 *
 * TBZ (to be zeroed, FB addresses only): fs_fallocate() links new file
 * blocks with the TBZ flag instead of writing zeroes; they count as
 * allocated and read as zeroes. The first write into one (bmap with alloc)
 * clears the flag in its transaction and write_blocks() writes the whole
 * block (data, zeroes around it) before that transaction commits: the flag
 * is cleared on disk only after the block's content is correct, so a crash
 * in between leaves a TBZ block (zeroes), never stale data. Sub-blocks are
 * small and are zeroed on disk instead. ZERO_RANGE sets TBZ on allocated
 * whole file blocks; PUNCH_HOLE frees whole blocks and zeroes partial ones.
 *
 * Truncation frees from the end downwards in transactions that fit the
 * journal; after each one the size is the lowest freed block boundary, so
 * every intermediate state is a consistent, shorter file.
 *
 * Data path without the mount's mutex (fs_core.c I6): "cached mapping"
 * (files held SH, or EX for a writer: fs_read_fast(), fs_write_fast())
 * below; everything else (the first access that fills the mapping,
 * allocating, extending, unaligned writes; MW files) runs under the mutex.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"

#define PBN	     ((uint64_t)VMFS_PB_NADDR)
#define SINGLE_FIRST ((uint64_t)VMFS_NDIRECT)
#define DOUBLE_FIRST (SINGLE_FIRST + VMFS_NSINGLE * PBN)
#define SB_LIMIT     ((uint64_t)VMFS_NDIRECT * VMFS_SB_SIZE)
#define CHUNK_UNITS  16u

uint64_t fs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t inode_off(const struct vmfs *fs, uint64_t addr)
{
	return vmfs_addr_off(&fs->vh, addr) + VMFS_UNIT;
}

static int fd_decode_at(struct vmfs *fs, const uint8_t *blk, uint64_t addr, struct vmfs_fd *fd)
{
	char why[256], as[48];
	int rc = vmfs_fd_decode(blk, &fs->vh, fd, why, sizeof(why));

	if (!rc && fd->self != addr) {
		snprintf(why, sizeof(why), "FD inode: self address does not match its place");
		rc = -EUCLEAN;
	}
	if (rc) {
		vmfs_addr_str(addr, as, sizeof(as));
		fs_seterr(fs, "%s: %s", as, why);
	}
	return rc ? rc : fs_at_check(fd);
}

int fd_load(struct tx *tx, uint64_t addr, struct vmfs_fd *fd)
{
	uint8_t *blk;
	int rc;

	if (vmfs_addr_check(&tx->fs->vh, addr, VMFS_RT_FD, NULL, 0))
		return -EUCLEAN;
	rc = tx_read_own(tx, inode_off(tx->fs, addr), vmfs_addr_off(&tx->fs->vh, addr), &blk);
	return rc ? rc : fd_decode_at(tx->fs, blk, addr, fd);
}

int fd_store(struct tx *tx, const struct vmfs_fd *fd)
{
	uint8_t *blk;
	int rc = tx_write_own(tx, inode_off(tx->fs, fd->self), 0,
			      vmfs_addr_off(&tx->fs->vh, fd->self), &blk);

	fs_map_drop_addr(tx->fs, fd->self); /* refilled from disk after the commit */
	if (!rc)
		vmfs_fd_encode(fd, blk);
	return rc;
}

int fd_peek(struct vmfs *fs, uint64_t addr, struct vmfs_fd *fd)
{
	uint8_t *blk = bdev_alloc(VMFS_UNIT);
	int rc = blk ? 0 : -ENOMEM;

	if (!rc && vmfs_addr_check(&fs->vh, addr, VMFS_RT_FD, NULL, 0))
		rc = -EUCLEAN;
	if (!rc) {
		fs_opt_note_read();
		rc = fs_meta_read(fs, blk, inode_off(fs, addr), VMFS_UNIT);
	}
	if (!rc)
		rc = fd_decode_at(fs, blk, addr, fd);
	bdev_free(blk);
	return rc;
}

uint32_t vmfs_ftype_mode(uint32_t type)
{
	static const uint32_t ifmt[VMFS_FT_MAX + 1] = {
	    [VMFS_FT_REG] = S_IFREG,   [VMFS_FT_DIR] = S_IFDIR, [VMFS_FT_LNK] = S_IFLNK,
	    [VMFS_FT_FIFO] = S_IFIFO,  [VMFS_FT_CHR] = S_IFCHR, [VMFS_FT_BLK] = S_IFBLK,
	    [VMFS_FT_SOCK] = S_IFSOCK,
	};

	return type <= VMFS_FT_MAX ? ifmt[type] : 0;
}

void fd_to_stat(const struct vmfs *fs, const struct vmfs_fd *fd, struct vmfs_stat *st)
{
	uint64_t bytes = 0;

	(void)fs;
	memset(st, 0, sizeof(*st));
	st->ino = fd->self;
	st->mode = fd->mode | vmfs_ftype_mode(fd->type);
	if (vmfs_ft_device(fd->type))
		st->rdev = makedev(fd->rdev_major, fd->rdev_minor);
	st->nlink = fd->nlink;
	st->uid = fd->uid;
	st->gid = fd->gid;
	st->size = fd->size;
	if (fd->amode == VMFS_AM_SB)
		bytes = fd->nalloc * VMFS_SB_SIZE;
	else if (fd->amode == VMFS_AM_FB)
		bytes = fd->nalloc * (uint64_t)fs->vh.block_size; /* PBs counted as blocks */
	st->blocks = bytes / 512;
	st->atime_ns = fd->atime_ns;
	st->mtime_ns = fd->mtime_ns;
	st->ctime_ns = fd->ctime_ns;
	st->btime_ns = fd->btime_ns;
	st->generation = fd->generation;
}

static uint64_t unit_of(const struct vmfs *fs, const struct vmfs_fd *fd)
{
	return fd->amode == VMFS_AM_SB ? VMFS_SB_SIZE : fs->vh.block_size;
}

/* ---- pointer blocks ---------------------------------------------------------- */

static int pb_load(struct tx *tx, uint64_t a, const struct vmfs_fd *fd, uint32_t level, int dirty,
		   struct vmfs_pb *pb, uint8_t **blk)
{
	char why[256], as[48];
	uint64_t off = vmfs_addr_off(&tx->fs->vh, a), own = vmfs_addr_off(&tx->fs->vh, fd->self);
	int rc = dirty ? tx_write_own(tx, off, 0, own, blk) : tx_read_own(tx, off, own, blk);

	if (dirty)
		fs_map_drop_addr(tx->fs, fd->self);
	if (rc)
		return rc;
	rc = vmfs_pb_decode(*blk, &tx->fs->vh, pb, why, sizeof(why));
	if (!rc && (pb->self != a || pb->owner != fd->self || pb->level != level)) {
		snprintf(why, sizeof(why), "pointer block: self/owner/level do not match its use");
		rc = -EUCLEAN;
	}
	if (rc) {
		vmfs_addr_str(a, as, sizeof(as));
		fs_seterr(tx->fs, "%s: %s", as, why);
	}
	return rc;
}

static int pb_new(struct tx *tx, struct vmfs_fd *fd, uint32_t level, uint64_t *a)
{
	struct vmfs_pb *pb;
	uint8_t *blk;
	int rc = fs_alloc(tx, VMFS_RT_PB, a);

	if (rc)
		return rc;
	fs_map_drop_addr(tx->fs, fd->self);
	fd->nalloc++;
	rc = tx_write_own(tx, vmfs_addr_off(&tx->fs->vh, *a), 1,
			  vmfs_addr_off(&tx->fs->vh, fd->self), &blk);
	pb = calloc(1, sizeof(*pb));
	if (!rc && !pb)
		rc = -ENOMEM;
	if (!rc) {
		pb->self = *a;
		pb->owner = fd->self;
		pb->level = level;
		vmfs_pb_encode(pb, blk);
	}
	free(pb);
	return rc;
}

/* Slot of the inode and path through PBs for lbn: idx[0] inode slot,
 * idx[1..depth] PB entries. Returns depth (0 direct, 1, 2) or -EFBIG. */
static int lbn_path(const struct vmfs_fd *fd, uint64_t lbn, unsigned idx[3])
{
	if (lbn < SINGLE_FIRST) {
		idx[0] = (unsigned)lbn;
		return 0;
	}
	if (fd->amode == VMFS_AM_SB)
		return -EFBIG;
	if (lbn < DOUBLE_FIRST) {
		lbn -= SINGLE_FIRST;
		idx[0] = VMFS_NDIRECT + (unsigned)(lbn / PBN);
		idx[1] = (unsigned)(lbn % PBN);
		return 1;
	}
	lbn -= DOUBLE_FIRST;
	if (lbn / (PBN * PBN) >= VMFS_NDOUBLE)
		return -EFBIG;
	idx[0] = VMFS_NDIRECT + VMFS_NSINGLE + (unsigned)(lbn / (PBN * PBN));
	idx[1] = (unsigned)(lbn / PBN % PBN);
	idx[2] = (unsigned)(lbn % PBN);
	return 2;
}

/* Resource address of lbn; with alloc, missing PBs and the block itself are
 * allocated (*isnew = 1 for a new data block). */
static int bmap(struct tx *tx, struct vmfs_fd *fd, uint64_t lbn, int alloc, uint64_t *out,
		int *isnew)
{
	unsigned idx[3], dtype = fd->amode == VMFS_AM_SB ? VMFS_RT_SB : VMFS_RT_FB;
	int depth = lbn_path(fd, lbn, idx), rc = 0;
	uint64_t *slot = &fd->u.addr[idx[0]];
	struct vmfs_pb *pb = NULL;
	uint8_t *blk = NULL;

	*out = 0;
	if (isnew)
		*isnew = 0;
	if (depth < 0)
		return depth;
	if (depth)
		pb = malloc(sizeof(*pb));
	if (depth && !pb)
		return -ENOMEM;
	for (int lvl = 0; lvl <= depth && !rc; lvl++) {
		uint32_t want_level = (uint32_t)(depth - lvl); /* level of the PB *slot names */

		if (!*slot && !alloc)
			break;
		if (!*slot) {
			rc = lvl == depth ? fs_alloc(tx, dtype, slot)
					  : pb_new(tx, fd, want_level, slot);
			if (rc)
				break;
			if (lvl == depth) {
				fd->nalloc++;
				if (isnew)
					*isnew = 1;
			}
			if (blk) { /* re-encode the parent PB we changed */
				vmfs_pb_encode(pb, blk);
			}
		}
		if (lvl == depth && alloc && (*slot & VMFS_ADDR_TBZ)) {
			/* first write into a TBZ block: the caller writes it whole
			 * before this transaction (which clears the flag) commits */
			*slot &= ~VMFS_ADDR_TBZ;
			if (blk)
				vmfs_pb_encode(pb, blk);
			if (isnew)
				*isnew = 1;
		}
		if (lvl == depth) {
			*out = *slot;
			break;
		}
		rc = pb_load(tx, *slot, fd, want_level, alloc, pb, &blk);
		slot = &pb->addr[idx[lvl + 1]];
	}
	free(pb);
	return rc;
}

int fs_bmap(struct tx *tx, const struct vmfs_fd *fd, uint64_t off, uint64_t *dev, uint64_t *run)
{
	uint64_t u = unit_of(tx->fs, fd), a;
	int rc = bmap(tx, (struct vmfs_fd *)fd, off / u, 0, &a, NULL);

	*run = u - off % u;
	*dev = 0;
	if (!rc && a && !(a & VMFS_ADDR_TBZ))
		*dev = vmfs_addr_off(&tx->fs->vh, a) + off % u;
	return rc;
}

/* ---- cached mapping ----------------------------------------------------------------
 * A file this host holds EX for a writer, or SH for readers (never MW),
 * cannot change on disk but through this host (I1: only under its EX lock;
 * SH excludes every other host's EX and MW): its inode and the pointer
 * blocks read so far are kept decoded in ino->map and the data path maps
 * offsets without reading them again, and without the mount's mutex. A
 * read-only mount takes no locks and never caches.
 *  - Filled only by the slow read/overwrite paths (under fs->mu, in a
 *    transaction holding the FD lock, from blocks the format decoders
 *    checked), and only while ino->mode is SH, or EX with n_ex > 0, with
 *    no MW open.
 *  - Dropped (never patched) by every change of the inode or a pointer
 *    block through a transaction (fd_store(), pb_load() dirty, pb_new()),
 *    when the last writer closes (before EX is converted to SH) and with
 *    the inode at its last close.
 *    A dropped map is refilled by the next slow path.
 *  - Data blocks are freed or relinked (truncate, punch, mode conversion,
 *    allocating writes) only under fs->mu and ino->rw exclusive; the fast
 *    path holds ino->rw shared from the lookup to the end of its I/O, so a
 *    block it maps is not freed and reused by another file meanwhile.
 *  - map_mu guards the map itself: lookups copy what they need out of it. */

static void map_free(struct fs_map *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < VMFS_NADDR; i++)
		free(m->l1[i]);
	for (unsigned j = 0; j < VMFS_NDOUBLE; j++) {
		for (unsigned k = 0; m->l2[j] && k < VMFS_PB_NADDR; k++)
			free(m->l2[j][k]);
		free(m->l2[j]);
	}
	free(m);
}

void fs_map_drop(struct fs_inode *ino)
{
	struct fs_map *m;

	if (!__atomic_load_n(&ino->map, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&ino->map_mu);
	m = ino->map;
	__atomic_store_n(&ino->map, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ino->map_mu);
	map_free(m);
}

void fs_map_drop_addr(struct vmfs *fs, uint64_t addr)
{
	struct fs_inode *ino = fs_inode_find(fs, addr);

	if (ino)
		fs_map_drop(ino);
}

#define MAP_MAX_PB 4096u /* pointer blocks cached per file (16 MiB) */

/* Caches the PB at *slot (level) into *dst, read through tx. */
static void map_pb(struct tx *tx, struct fs_map *m, uint64_t a, uint32_t level,
		   struct vmfs_pb **dst)
{
	struct vmfs_pb *pb;
	uint8_t *blk;

	if (*dst || !a || m->npb >= MAP_MAX_PB || !(pb = malloc(sizeof(*pb))))
		return;
	if (pb_load(tx, a, &m->fd, level, 0, pb, &blk)) {
		free(pb);
		return;
	}
	*dst = pb;
	m->npb++;
}

/* Caches the pointer blocks on the path of lbn (map_mu held). */
static void map_fill_lbn(struct tx *tx, struct fs_map *m, uint64_t lbn)
{
	unsigned idx[3], j;
	int depth = lbn_path(&m->fd, lbn, idx);
	struct vmfs_pb *top;

	if (depth <= 0)
		return;
	map_pb(tx, m, m->fd.u.addr[idx[0]], (uint32_t)depth, &m->l1[idx[0]]);
	top = m->l1[idx[0]];
	if (depth == 1 || !top || !top->addr[idx[1]])
		return;
	j = idx[0] - VMFS_NDIRECT - VMFS_NSINGLE;
	if (!m->l2[j])
		m->l2[j] = calloc(VMFS_PB_NADDR, sizeof(*m->l2[j]));
	if (m->l2[j])
		map_pb(tx, m, top->addr[idx[1]], 1, &m->l2[j][idx[1]]);
}

/* After a slow read or overwrite of [off, off + len) in tx (FD lock held,
 * fd as loaded in tx): creates or extends the cached mapping. */
static void map_fill(struct tx *tx, struct fs_inode *ino, const struct vmfs_fd *fd, uint64_t off,
		     uint64_t len)
{
	uint64_t u = unit_of(tx->fs, fd);

	if (!ino || tx->fs->ro || !ino->lk || ino->n_mw ||
	    !(ino->mode == LM_MODE_SH || (ino->mode == LM_MODE_EX && ino->n_ex)))
		return;
	pthread_mutex_lock(&ino->map_mu);
	if (!ino->map) {
		struct fs_map *m = calloc(1, sizeof(*m));

		if (m) {
			m->fd = *fd;
			__atomic_store_n(&ino->map, m, __ATOMIC_RELEASE);
		}
	}
	if (ino->map && fd->amode != VMFS_AM_INLINE && len)
		for (uint64_t lbn = off / u; lbn <= (off + len - 1) / u; lbn++)
			map_fill_lbn(tx, ino->map, lbn);
	pthread_mutex_unlock(&ino->map_mu);
}

/* Resource address of lbn from the map (0: hole): 1, or 0 when a pointer
 * block on its path is not cached. */
static int map_get(const struct fs_map *m, uint64_t lbn, uint64_t *a)
{
	unsigned idx[3] = {0, 0, 0};
	int depth = lbn_path(&m->fd, lbn, idx);
	const struct vmfs_pb *pb;
	struct vmfs_pb *const *l2;

	*a = 0;
	if (depth < 0)
		return 0;
	*a = m->fd.u.addr[idx[0]];
	if (!depth || !*a)
		return 1;
	pb = m->l1[idx[0]];
	if (!pb)
		return 0;
	*a = pb->addr[idx[1]];
	if (depth == 1 || !*a)
		return 1;
	l2 = m->l2[idx[0] - VMFS_NDIRECT - VMFS_NSINGLE];
	pb = l2 ? l2[idx[1]] : NULL;
	if (!pb)
		return 0;
	*a = pb->addr[idx[2]];
	return 1;
}

static int get_data(struct vmfs *fs, uint8_t *dst, size_t len, uint64_t dev);

#define FAST_RUNS 64

struct run {
	uint64_t dev; /* 0: hole or TBZ (reads as zeroes) */
	uint64_t n;
};

/* Maps [off, off + len) (inside the size, block modes) into runs under
 * map_mu: the number of runs, or -FS_E_SLOW. write: every block must be
 * allocated and not TBZ. */
static int map_runs(struct vmfs *fs, const struct fs_map *m, uint64_t off, uint64_t len, int write,
		    struct run *r)
{
	uint64_t u = unit_of(fs, &m->fd);
	int nr = 0;

	while (len) {
		uint64_t a, in = off % u, n = u - in < len ? u - in : len;

		if (nr == FAST_RUNS || !map_get(m, off / u, &a))
			return -FS_E_SLOW;
		if (write && (!a || (a & VMFS_ADDR_TBZ)))
			return -FS_E_SLOW;
		r[nr].dev = a && !(a & VMFS_ADDR_TBZ) ? vmfs_addr_off(&fs->vh, a) + in : 0;
		r[nr++].n = n;
		off += n;
		len -= n;
	}
	return nr;
}

/* Reads one run into dst: aligned runs straight from the device. */
static int get_run(struct vmfs *fs, uint8_t *dst, const struct run *r)
{
	uint64_t sec = fs->bd->lsec;

	if (!r->dev) {
		memset(dst, 0, r->n);
		return 0;
	}
	if (r->dev % sec == 0 && r->n % sec == 0) {
		fs_opt_note_read();
		return bdev_read(fs->bd, dst, r->dev, r->n);
	}
	return get_data(fs, dst, r->n, r->dev);
}

/* Test hook: VMFS_TEST_FAST_DELAY_US=N sleeps N us between the lookup and
 * the I/O of a read outside the mutex (fs_read_fast()),
 * widening the window a truncate must not enter (tests/fs/
 * test_fs_threads.c). Read once. */
static unsigned fast_delay_us(void)
{
	static int v = -1;
	int d = __atomic_load_n(&v, __ATOMIC_RELAXED);

	if (d < 0) {
		const char *e = getenv("VMFS_TEST_FAST_DELAY_US");

		d = e && *e ? atoi(e) : 0;
		d = d < 0 || d > 100000 ? 0 : d;
		__atomic_store_n(&v, d, __ATOMIC_RELAXED);
	}
	return (unsigned)d;
}

ssize_t fs_read_fast(struct vmfs *fs, struct fs_inode *ino, void *buf, size_t len, uint64_t off)
{
	struct run r[FAST_RUNS];
	uint8_t *p = buf;
	int nr = 0, rc = 0;

	pthread_mutex_lock(&ino->map_mu);
	if (!ino->map) {
		nr = -FS_E_SLOW;
	} else if (off >= ino->map->fd.size) {
		len = 0;
	} else {
		len = len < ino->map->fd.size - off ? len : (size_t)(ino->map->fd.size - off);
		if (ino->map->fd.amode == VMFS_AM_INLINE)
			memcpy(p, ino->map->fd.u.data + off, len);
		else
			nr = map_runs(fs, ino->map, off, len, 0, r);
	}
	pthread_mutex_unlock(&ino->map_mu);
	if (nr < 0)
		return nr;
	if (nr && fast_delay_us())
		usleep(fast_delay_us());
	for (int i = 0; i < nr && !rc; i++) {
		rc = get_run(fs, p, &r[i]);
		p += r[i].n;
	}
	return rc ? rc : (ssize_t)len;
}

ssize_t fs_write_fast(struct vmfs *fs, struct fs_inode *ino, const void *buf, size_t len,
		      uint64_t off)
{
	uint64_t sec = fs->bd->lsec;
	struct run r[FAST_RUNS];
	const uint8_t *p = buf;
	int nr = -FS_E_SLOW, rc = 0;

	if (!len || off % sec || len % sec || off + len < off)
		return -FS_E_SLOW; /* partial sectors: read-modify-write under fs->mu */
	pthread_mutex_lock(&ino->map_mu);
	if (ino->map && ino->map->fd.amode != VMFS_AM_INLINE && off + len <= ino->map->fd.size)
		nr = map_runs(fs, ino->map, off, len, 1, r);
	pthread_mutex_unlock(&ino->map_mu);
	if (nr < 0)
		return nr;
	for (int i = 0; i < nr && !rc; i++) {
		rc = lm_guarded_write(fs->lm, p, r[i].dev, r[i].n);
		p += r[i].n;
	}
	if (rc)
		return rc;
	__atomic_store_n(&ino->mtime_dirty, 1, __ATOMIC_RELEASE);
	return (ssize_t)len;
}

/* ---- truncation ------------------------------------------------------------------ */

struct trunc {
	struct tx *tx;
	struct vmfs_fd *fd;
	uint64_t from; /* first lbn to free */
	uint64_t low;  /* lowest lbn freed so far */
};

static int budget_left(struct trunc *t)
{
	return tx_ndirty(t->tx) + 8 < fs_tx_max(t->tx->fs) &&
	       (t->fd->type == VMFS_FT_DIR || t->tx->nl + 8 < TX_MAXLOCKS);
}

static int free_one(struct trunc *t, uint64_t *slot)
{
	int rc;

	if (!budget_left(t))
		return -FS_E_TOOBIG;
	rc = fs_free(t->tx, *slot & ~VMFS_ADDR_FLAGS);
	if (!rc) {
		*slot = 0;
		t->fd->nalloc--;
	}
	return rc;
}

/* Frees entries of PB a covering lbns >= t->from, highest first; 1 if the PB
 * is empty afterwards. */
static int free_pb(struct trunc *t, uint64_t a, uint32_t level, uint64_t base)
{
	uint64_t span = level == 2 ? PBN : 1;
	struct vmfs_pb *pb = malloc(sizeof(*pb));
	uint8_t *blk;
	int rc = pb ? pb_load(t->tx, a, t->fd, level, 1, pb, &blk) : -ENOMEM, empty = 1;

	for (unsigned e = VMFS_PB_NADDR; e-- > 0 && !rc;) {
		uint64_t first = base + e * span;

		if (!pb->addr[e])
			continue;
		if (first + span <= t->from) {
			empty = 0;
			break;
		}
		if (level == 1) {
			rc = free_one(t, &pb->addr[e]);
		} else {
			rc = free_pb(t, pb->addr[e], 1, first);
			if (rc == 1)
				rc = free_one(t, &pb->addr[e]);
			else if (rc == 0)
				empty = 0;
		}
		if (!rc || rc == -EAGAIN || rc == -FS_E_TOOBIG)
			t->low = first < t->low && !pb->addr[e] ? first : t->low;
	}
	for (unsigned e = 0; e < VMFS_PB_NADDR && !rc && empty; e++)
		empty = !pb->addr[e];
	if (pb && (!rc || rc == -EAGAIN || rc == -FS_E_TOOBIG))
		vmfs_pb_encode(pb, blk);
	free(pb);
	return rc ? rc : empty;
}

static void slot_range(const struct vmfs_fd *fd, unsigned i, uint64_t *first, uint64_t *n,
		       uint32_t *level)
{
	*level = 0;
	*n = 1;
	*first = i;
	if (fd->amode == VMFS_AM_SB || i < VMFS_NDIRECT)
		return;
	if (i < VMFS_NDIRECT + VMFS_NSINGLE) {
		*level = 1;
		*n = PBN;
		*first = SINGLE_FIRST + (i - VMFS_NDIRECT) * PBN;
		return;
	}
	*level = 2;
	*n = PBN * PBN;
	*first = DOUBLE_FIRST + (i - VMFS_NDIRECT - VMFS_NSINGLE) * PBN * PBN;
}

/* Frees blocks >= from (highest first) until done (0) or the transaction is
 * full (-EAGAIN); t->low: lowest freed lbn. */
static int free_blocks(struct trunc *t)
{
	struct vmfs_fd *fd = t->fd;
	int rc = 0;

	for (unsigned i = VMFS_NADDR; i-- > 0 && (rc == 0);) {
		uint64_t first, n;
		uint32_t level;

		if (!fd->u.addr[i])
			continue;
		slot_range(fd, i, &first, &n, &level);
		if (first + n <= t->from)
			break;
		if (level == 0) {
			rc = free_one(t, &fd->u.addr[i]);
		} else {
			rc = free_pb(t, fd->u.addr[i], level, first);
			if (rc == 1)
				rc = free_one(t, &fd->u.addr[i]);
		}
		if ((!rc || rc == -EAGAIN || rc == -FS_E_TOOBIG) && !fd->u.addr[i] &&
		    first < t->low)
			t->low = first;
	}
	return rc;
}

static int all_zero(const uint8_t *b, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* Zeroes [from, to) of the file's data (only allocated blocks), writing
 * only sectors that hold non-zero bytes in the range. */
static int zero_data(struct tx *tx, struct vmfs_fd *fd, uint64_t from, uint64_t to)
{
	uint8_t *buf = NULL;
	int rc = 0;

	while (from < to && !rc) {
		uint64_t dev, run, a, n;

		rc = fs_bmap(tx, fd, from, &dev, &run);
		n = run < to - from ? run : to - from;
		if (!rc && dev) {
			a = dev & ~(uint64_t)(VMFS_UNIT - 1);
			if (!buf)
				buf = bdev_alloc(VMFS_UNIT);
			if (!buf)
				rc = -ENOMEM;
			for (uint64_t p = a; !rc && p < dev + n; p += VMFS_UNIT) {
				uint64_t lo = p < dev ? dev : p, hi = p + VMFS_UNIT,
					 sec = tx->fs->bd->lsec;
				uint64_t slo, shi;

				hi = hi > dev + n ? dev + n : hi;
				rc = bdev_read(tx->fs->bd, buf, p, VMFS_UNIT);
				if (rc || all_zero(buf + (lo - p), hi - lo))
					continue; /* nothing to zero: write nothing */
				/* only the sectors that change: a torn write of the
				 * others could damage bytes below the size */
				slo = (lo - p) / sec * sec;
				shi = (hi - p + sec - 1) / sec * sec;
				memset(buf + (lo - p), 0, hi - lo);
				rc = lm_guarded_write(tx->fs->lm, buf + slo, p + slo, shi - slo);
			}
		}
		from += n;
	}
	bdev_free(buf);
	return rc;
}

/* One transaction's worth of shrinking; 0 when the file has its size. */
static int shrink_step(struct tx *tx, struct vmfs_fd *fd, uint64_t size)
{
	uint64_t u = unit_of(tx->fs, fd), newsize;
	struct trunc t = {.tx = tx, .fd = fd, .from = (size + u - 1) / u, .low = UINT64_MAX};
	int rc;

	if (fd->amode == VMFS_AM_INLINE) {
		memset(fd->u.data + size, 0, VMFS_INLINE_MAX - size);
		fd->size = size;
		return 0;
	}
	rc = free_blocks(&t);
	if (rc == -FS_E_TOOBIG)
		rc = -EAGAIN; /* partial: commit and go on */
	if (rc && rc != -EAGAIN)
		return rc;
	if (rc == 0) {
		newsize = size;
	} else {
		newsize = t.low == UINT64_MAX ? fd->size : t.low * u;
		newsize = newsize < fd->size ? newsize : fd->size;
		newsize = newsize > size ? newsize : size;
	}
	fd->size = newsize;
	if (fd->size == 0 && fd->nalloc == 0 && fd->type != VMFS_FT_DIR) {
		fd->amode = VMFS_AM_INLINE;
		memset(&fd->u, 0, sizeof(fd->u));
	}
	return rc;
}

/* Reads len bytes at device offset dev (any alignment) through a bounce
 * buffer of whole 4 KiB units. */
static int get_data(struct vmfs *fs, uint8_t *dst, size_t len, uint64_t dev)
{
	uint64_t a = dev & ~(uint64_t)(VMFS_UNIT - 1);
	uint64_t e = (dev + len + VMFS_UNIT - 1) & ~(uint64_t)(VMFS_UNIT - 1);
	uint8_t *b = bdev_alloc(e - a);
	int rc;

	fs_opt_note_read(); /* inside fs_opt_read(): this needs validating */
	rc = b ? bdev_read(fs->bd, b, a, e - a) : -ENOMEM;
	if (!rc)
		memcpy(dst, b + (dev - a), len);
	bdev_free(b);
	return rc;
}

/* ---- mode conversion ----------------------------------------------------------- */

static int write_blocks(struct tx *tx, struct vmfs_fd *fd, const uint8_t *buf, size_t len,
			uint64_t off);

/* Converts fd to a block mode able to hold `end` bytes, copying its data. */
static int convert(struct tx *tx, struct vmfs_fd *fd, uint64_t end)
{
	struct vmfs *fs = tx->fs;
	uint64_t sbmax = fs->vh.block_size / 4 < SB_LIMIT ? fs->vh.block_size / 4 : SB_LIMIT;
	unsigned want = end <= sbmax && sbmax >= VMFS_SB_SIZE ? VMFS_AM_SB : VMFS_AM_FB;
	uint64_t size = fd->size;
	uint8_t *data;
	int rc = 0;

	if (fd->amode == want || (fd->amode == VMFS_AM_FB) ||
	    (fd->amode == VMFS_AM_SB && end <= sbmax))
		return 0;
	data = calloc(1, size ? size : 1);
	if (!data)
		return -ENOMEM;
	if (fd->amode == VMFS_AM_INLINE) {
		memcpy(data, fd->u.data, size);
	} else {
		for (uint64_t o = 0; o < size && !rc;) {
			uint64_t dev, run;

			rc = fs_bmap(tx, fd, o, &dev, &run);
			run = run < size - o ? run : size - o;
			if (!rc && dev)
				rc = get_data(fs, data + o, run, dev);
			o += run;
		}
		if (!rc) {
			struct trunc t = {.tx = tx, .fd = fd, .from = 0, .low = UINT64_MAX};

			rc = free_blocks(&t);
		}
	}
	if (!rc) {
		memset(&fd->u, 0, sizeof(fd->u));
		fd->amode = want;
		rc = write_blocks(tx, fd, data, size, 0);
	}
	free(data);
	return rc;
}

/* ---- writing --------------------------------------------------------------------- */

/* Writes len bytes at device offset dev (inside one block), touching only
 * the logical sectors they cover: a partial first or last sector is
 * read-modify-written, nothing else is read. Hosts sharing a multi-writer
 * file write disjoint sectors of one block at once (clustered guest file
 * systems do), so a wider read-modify-write would put back another host's
 * sectors as they were before its write. */
static int put_data(struct vmfs *fs, const uint8_t *src, size_t len, uint64_t dev)
{
	uint64_t sec = fs->bd->lsec;
	uint64_t a = dev / sec * sec, e = (dev + len + sec - 1) / sec * sec;
	uint8_t *buf;
	int rc = 0;

	if (a == dev && e == dev + len) /* whole sectors: no bounce needed */
		return lm_guarded_write(fs->lm, src, dev, len);
	buf = bdev_alloc(e - a);
	if (!buf)
		return -ENOMEM;
	if (a < dev)
		rc = bdev_read(fs->bd, buf, a, sec);
	if (!rc && dev + len < e && (e - sec > a || a == dev))
		rc = bdev_read(fs->bd, buf + (e - a - sec), e - sec, sec);
	if (!rc) {
		memcpy(buf + (dev - a), src, len);
		rc = lm_guarded_write(fs->lm, buf, a, e - a);
	}
	bdev_free(buf);
	return rc;
}

/* Writes data into fd's blocks (block mode), allocating as needed. */
static int write_blocks(struct tx *tx, struct vmfs_fd *fd, const uint8_t *buf, size_t len,
			uint64_t off)
{
	struct vmfs *fs = tx->fs;
	uint64_t u = unit_of(fs, fd);
	int rc = 0;

	while (len && !rc) {
		uint64_t lbn = off / u, in = off % u, n = u - in, a, dev;
		int isnew;

		n = n < len ? n : len;
		rc = bmap(tx, fd, lbn, 1, &a, &isnew);
		if (rc)
			break;
		dev = vmfs_addr_off(&fs->vh, a & ~VMFS_ADDR_FLAGS);
		if (isnew || (a & VMFS_ADDR_TBZ)) {
			uint8_t *blk = bdev_alloc(u);

			if (!blk)
				return -ENOMEM;
			memcpy(blk + in, buf, n);
			rc = lm_guarded_write(fs->lm, blk, dev, u);
			bdev_free(blk);
		} else {
			rc = put_data(fs, buf, n, dev + in);
		}
		buf += n;
		off += n;
		len -= n;
	}
	return rc;
}

/* The file grows from fd->size to end: bytes of its last block beyond the
 * old size may hold old data (a shrink does not zero them: those bytes are
 * visible until its transaction commits); zero them first. They are beyond
 * the committed size, so a crash exposes nothing. */
static int zero_tail(struct tx *tx, struct vmfs_fd *fd, uint64_t end)
{
	uint64_t u = unit_of(tx->fs, fd), stop = (fd->size + u - 1) / u * u;

	if (fd->amode == VMFS_AM_INLINE || end <= fd->size || fd->size % u == 0)
		return 0;
	return zero_data(tx, fd, fd->size, end < stop ? end : stop);
}

static int write_in_tx(struct tx *tx, struct vmfs_fd *fd, const uint8_t *buf, size_t len,
		       uint64_t off)
{
	uint64_t end = off + len;
	int rc = 0;

	if (end > vmfs_fd_max_size(tx->fs->vh.block_size))
		return -EFBIG;
	if (fd->amode == VMFS_AM_INLINE && end <= VMFS_INLINE_MAX) {
		memcpy(fd->u.data + off, buf, len);
	} else {
		rc = convert(tx, fd, end > fd->size ? end : fd->size);
		if (!rc)
			rc = zero_tail(tx, fd, off);
		if (!rc)
			rc = write_blocks(tx, fd, buf, len, off);
	}
	if (!rc && end > fd->size)
		fd->size = end;
	fd->mtime_ns = fd->ctime_ns = fs_now_ns();
	return rc;
}

int fs_write_new(struct tx *tx, struct vmfs_fd *fd, const void *buf, size_t len)
{
	return write_in_tx(tx, fd, buf, len, 0);
}

int fs_read_small(struct tx *tx, const struct vmfs_fd *fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	int rc = 0;

	len = len < fd->size ? len : (size_t)fd->size;
	if (fd->amode == VMFS_AM_INLINE) {
		memcpy(p, fd->u.data, len);
		return 0;
	}
	for (size_t done = 0; done < len && !rc;) {
		uint64_t dev, run;

		rc = fs_bmap(tx, fd, done, &dev, &run);
		run = run < len - done ? run : len - done;
		if (!rc && !dev)
			memset(p + done, 0, run);
		if (!rc && dev)
			rc = get_data(tx->fs, p + done, run, dev);
		done += run;
	}
	return rc;
}

/* A write inside the size over allocated blocks changes no metadata: the
 * data goes in place without a transaction (the open file's lock covers
 * it; mtime is set at the last close). 1 done, 0 not such a write, -errno. */
static int overwrite(struct vmfs *fs, struct fs_inode *ino, const uint8_t *buf, size_t len,
		     uint64_t off)
{
	uint64_t addr = ino->addr;
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	struct tx tx;
	int rc = fd ? 0 : -ENOMEM, pass;

	tx_begin(fs, &tx);
	if (!rc)
		rc = tx_lock_fd(&tx, addr, LM_MODE_SH); /* borrows the open file's lock */
	if (!rc)
		rc = fd_load(&tx, addr, fd);
	if (!rc && (fd->amode == VMFS_AM_INLINE || off + len > fd->size))
		rc = 1;
	for (pass = 0; pass < 2 && !rc; pass++) {
		for (uint64_t o = 0; o < len && !rc;) {
			uint64_t dev, run;

			rc = fs_bmap(&tx, fd, off + o, &dev, &run);
			run = run < len - o ? run : len - o;
			if (!rc && !dev)
				rc = 1; /* a hole: needs allocation */
			if (!rc && pass)
				rc = put_data(fs, buf + o, run, dev);
			o += run;
		}
		if (!rc && !pass)
			map_fill(&tx, ino, fd, off, len); /* the next ones go fast */
	}
	tx_abort(&tx);
	free(fd);
	return rc == 1 ? 0 : rc < 0 ? rc : 1;
}

ssize_t fs_write_data(struct vmfs *fs, struct fs_inode *ino, const void *buf, size_t len,
		      uint64_t off)
{
	const uint8_t *p = buf;
	uint64_t addr = ino->addr;
	struct vmfs_fd *fd;
	size_t done = 0;
	int rc = overwrite(fs, ino, buf, len, off);

	if (rc == 1) {
		__atomic_store_n(&ino->mtime_dirty, 1, __ATOMIC_RELEASE);
		return (ssize_t)len;
	}
	fd = malloc(sizeof(*fd));
	rc = rc ? rc : fd ? 0 : -ENOMEM;
	for (int tries = 0; (!rc || (rc == -EAGAIN && tries < 20)) && done < len; tries++) {
		struct tx tx;
		uint64_t u, n;

		if (rc == -EAGAIN)
			fs_backoff(fs, tries);
		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, addr, LM_MODE_EX);
		if (!rc)
			rc = fd_load(&tx, addr, fd);
		if (!rc) {
			u = fd->amode == VMFS_AM_INLINE ? fs->vh.block_size : unit_of(fs, fd);
			n = CHUNK_UNITS * u - (off + done) % u;
			n = n < len - done ? n : len - done;
			rc = write_in_tx(&tx, fd, p + done, n, off + done);
			if (!rc)
				rc = fd_store(&tx, fd);
			if (!rc) {
				rc = tx_commit(&tx);
				if (!rc) {
					done += n;
					tries = 0;
				}
				continue;
			}
		}
		tx_abort(&tx);
	}
	free(fd);
	return done ? (ssize_t)done : rc;
}

ssize_t fs_read_data(struct vmfs *fs, struct fs_inode *ino, void *buf, size_t len, uint64_t off)
{
	uint64_t addr = ino->addr;
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	uint8_t *p = buf;
	struct tx tx;
	size_t done = 0;
	int rc = fd ? 0 : -ENOMEM;

	tx_begin(fs, &tx);
	if (!rc)
		rc = tx_lock_fd(&tx, addr, LM_MODE_SH);
	if (!rc)
		rc = fd_load(&tx, addr, fd);
	if (!rc && off < fd->size) {
		len = len < fd->size - off ? len : (size_t)(fd->size - off);
		if (fd->amode == VMFS_AM_INLINE) {
			memcpy(p, fd->u.data + off, len);
			done = len;
		}
		while (done < len && !rc) {
			uint64_t dev, run;

			rc = fs_bmap(&tx, fd, off + done, &dev, &run);
			run = run < len - done ? run : len - done;
			if (!rc && !dev)
				memset(p + done, 0, run);
			if (!rc && dev)
				rc = get_data(fs, p + done, run, dev);
			done += run;
		}
	}
	if (!rc)
		map_fill(&tx, ino, fd, off, done);
	tx_abort(&tx);
	free(fd);
	return rc ? rc : (ssize_t)done;
}

/* ---- size changes and freeing ------------------------------------------------------ */

int fs_trunc_blocks(struct tx *tx, struct vmfs_fd *fd, uint64_t size, int final)
{
	(void) final;
	return shrink_step(tx, fd, size);
}

/* One transaction of a size change: 0 done, -EAGAIN committed a partial
 * shrink (call again), -EBUSY-ish errors abort. */
static int size_step(struct vmfs *fs, uint64_t addr, uint64_t size, struct vmfs_fd *fd)
{
	struct tx tx;
	int rc, partial = 0;

	tx_begin(fs, &tx);
	rc = tx_lock_fd(&tx, addr, LM_MODE_EX);
	if (!rc)
		rc = fd_load(&tx, addr, fd);
	if (!rc && fd->type != VMFS_FT_REG)
		rc = fd->type == VMFS_FT_DIR ? -EISDIR : -EINVAL; /* symlinks, special files */
	if (!rc && size >= fd->size) {
		if (fd->amode != VMFS_AM_INLINE || size > VMFS_INLINE_MAX)
			rc = convert(&tx, fd, size);
		if (!rc)
			rc = zero_tail(&tx, fd, size);
		if (!rc)
			fd->size = size;
	} else if (!rc) {
		rc = shrink_step(&tx, fd, size);
		partial = rc == -EAGAIN; /* consistent: commit and go on */
		rc = partial ? 0 : rc;
	}
	if (!rc) {
		fd->mtime_ns = fd->ctime_ns = fs_now_ns();
		rc = fd_store(&tx, fd);
	}
	if (rc) {
		tx_abort(&tx);
		return rc == -EAGAIN ? -EBUSY : rc; /* contention: see fs_set_size() */
	}
	rc = tx_commit(&tx);
	return rc ? rc : partial ? -EAGAIN : 0;
}

/* An open inode's rw lock, exclusive, around a change that may free or
 * relink its blocks (fast I/O in flight ends first); NULL if not open. */
static struct fs_inode *data_excl(struct vmfs *fs, uint64_t addr)
{
	struct fs_inode *ino = fs_inode_find(fs, addr);

	if (ino)
		pthread_rwlock_wrlock(&ino->rw);
	return ino;
}

static void data_excl_end(struct fs_inode *ino)
{
	if (ino)
		pthread_rwlock_unlock(&ino->rw);
}

int fs_set_size(struct vmfs *fs, uint64_t addr, uint64_t size)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	int rc = fd ? -EAGAIN : -ENOMEM, busy = 0;
	struct fs_inode *ino = data_excl(fs, addr);

	if (size > vmfs_fd_max_size(fs->vh.block_size))
		rc = -EFBIG;
	while (rc == -EAGAIN || (rc == -EBUSY && busy < 20)) {
		if (rc == -EBUSY)
			fs_backoff(fs, busy++);
		rc = size_step(fs, addr, size, fd);
	}
	data_excl_end(ino);
	free(fd);
	return rc;
}

int fs_free_fd(struct tx *tx, struct vmfs_fd *fd)
{
	struct trunc t = {.tx = tx, .fd = fd, .from = 0, .low = UINT64_MAX};
	int rc = fd->amode == VMFS_AM_INLINE ? 0 : free_blocks(&t);

	if (!rc && fd->xattr)
		rc = fs_xattr_free(tx, fd);
	if (!rc) { /* generation 0: a freed FD, so calls by inode see it gone */
		fd->generation = 0;
		rc = fd_store(tx, fd);
	}
	return rc ? rc : fs_free(tx, fd->self);
}

/* ---- preallocation (vmfs_fallocate) ------------------------------------------------ */

enum { OP_ALLOC, OP_PUNCH, OP_ZERO };

/* Links a new block at *slot: FB with TBZ (lazy) or zeroed on disk first
 * (eager, and sub-blocks). */
static int new_block(struct tx *tx, struct vmfs_fd *fd, uint64_t *slot, int eager)
{
	struct vmfs *fs = tx->fs;
	unsigned type = fd->amode == VMFS_AM_SB ? VMFS_RT_SB : VMFS_RT_FB;
	uint64_t a;
	int rc = fs_alloc(tx, type, &a);

	if (rc)
		return rc;
	if (type == VMFS_RT_FB && !eager) {
		a |= VMFS_ADDR_TBZ;
	} else {
		rc = lm_write_guard(fs->lm);
		if (!rc)
			rc = bdev_write_zeroes(fs->bd, vmfs_addr_off(&fs->vh, a), unit_of(fs, fd));
		if (rc) {
			fs_free(tx, a);
			return rc;
		}
	}
	*slot = a;
	fd->nalloc++;
	return 0;
}

static int leaf_op(struct tx *tx, struct vmfs_fd *fd, uint64_t *slot, int op, int eager)
{
	struct vmfs *fs = tx->fs;
	int rc = 0;

	if (op == OP_PUNCH) {
		if (!*slot)
			return 0;
		rc = fs_free(tx, *slot & ~VMFS_ADDR_FLAGS);
		if (!rc) {
			*slot = 0;
			fd->nalloc--;
		}
		return rc;
	}
	if (!*slot)
		return new_block(tx, fd, slot, eager);
	if (op != OP_ZERO || (*slot & VMFS_ADDR_TBZ))
		return 0;
	if (fd->amode == VMFS_AM_FB) {
		*slot |= VMFS_ADDR_TBZ;
		return 0;
	}
	rc = lm_write_guard(fs->lm);
	return rc ? rc : bdev_write_zeroes(fs->bd, vmfs_addr_off(&fs->vh, *slot), unit_of(fs, fd));
}

/* Applies op to the whole logical block lbn (block modes). */
static int block_op(struct tx *tx, struct vmfs_fd *fd, uint64_t lbn, int op, int eager)
{
	unsigned idx[3];
	int depth = lbn_path(fd, lbn, idx), rc = 0;
	uint64_t *slot;
	struct vmfs_pb *pb = NULL;
	uint8_t *blk = NULL;

	if (depth < 0)
		return depth;
	if (depth && !(pb = malloc(sizeof(*pb))))
		return -ENOMEM;
	slot = &fd->u.addr[idx[0]];
	for (int lvl = 0; lvl < depth && !rc; lvl++) {
		uint32_t level = (uint32_t)(depth - lvl);

		if (!*slot && op == OP_PUNCH)
			goto out; /* a hole already */
		if (!*slot) {
			rc = pb_new(tx, fd, level, slot);
			if (!rc && blk)
				vmfs_pb_encode(pb, blk);
		}
		if (!rc)
			rc = pb_load(tx, *slot, fd, level, 1, pb, &blk);
		slot = &pb->addr[idx[lvl + 1]];
	}
	if (!rc)
		rc = leaf_op(tx, fd, slot, op, eager);
	if (!rc && blk)
		vmfs_pb_encode(pb, blk);
out:
	free(pb);
	return rc;
}

/* One piece of [pos, end): the op on one block (whole) or a part of it. */
static int falloc_piece(struct tx *tx, struct vmfs_fd *fd, int op, int eager, uint64_t pos,
			uint64_t end, uint64_t *next)
{
	uint64_t u = unit_of(tx->fs, fd), lbn = pos / u, bend = (lbn + 1) * u;
	int whole = pos % u == 0 && bend <= end;

	*next = bend < end ? bend : end;
	if (whole || op == OP_ALLOC)
		return block_op(tx, fd, lbn, op, eager);
	if (op == OP_ZERO) {
		int rc = block_op(tx, fd, lbn, OP_ALLOC, eager); /* a hole: a zero block */

		if (rc)
			return rc;
	}
	return zero_data(tx, fd, pos, *next); /* skips holes and TBZ blocks */
}

/* The inline case: nothing to allocate, punch/zero in the inode. */
static void falloc_inline(struct vmfs_fd *fd, int op, uint64_t off, uint64_t end)
{
	uint64_t lim = end < fd->size ? end : fd->size;

	if (op != OP_ALLOC && off < lim)
		memset(fd->u.data + off, 0, lim - off);
}

struct falloc {
	int op, eager, keep;
	uint64_t off, end, pos;
};

/* One transaction of fs_fallocate(): 0 done, -EAGAIN call again. */
static int falloc_step(struct vmfs *fs, uint64_t addr, struct falloc *a, struct vmfs_fd *fd)
{
	unsigned max = fs_tx_max(fs), n = 0;
	uint64_t start = a->pos, grow = 0, old = 0;
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = tx_lock_fd(&tx, addr, LM_MODE_EX);
	if (!rc)
		rc = fd_load(&tx, addr, fd);
	if (!rc && fd->type != VMFS_FT_REG)
		rc = fd->type == VMFS_FT_DIR ? -EISDIR : -EINVAL;
	if (!rc) {
		old = fd->size;
		grow = a->keep || a->op == OP_PUNCH || a->end <= old ? old : a->end;
	}
	if (!rc && fd->amode == VMFS_AM_INLINE &&
	    (a->end <= VMFS_INLINE_MAX || a->op == OP_PUNCH)) {
		falloc_inline(fd, a->op, a->off, a->end);
		a->pos = a->end;
	} else if (!rc) {
		rc = convert(&tx, fd, a->end > old ? a->end : old);
		if (!rc && grow > old)
			rc = zero_tail(&tx, fd, grow);
		while (!rc && a->pos < a->end && tx_ndirty(&tx) + 8 < max && n++ < 4096)
			rc = falloc_piece(&tx, fd, a->op, a->eager, a->pos, a->end, &a->pos);
	}
	if (rc == -EAGAIN && a->pos > start)
		rc = 0; /* a busy cluster: commit what we have, then go on */
	if (!rc) {
		uint64_t now = fs_now_ns(), reach = a->pos < grow ? a->pos : grow;

		if (reach > old)
			fd->size = reach;
		fd->ctime_ns = now;
		if (a->op != OP_ALLOC || fd->size != old)
			fd->mtime_ns = now;
		rc = fd_store(&tx, fd);
	}
	if (!rc)
		rc = tx_commit(&tx);
	else {
		tx_abort(&tx);
		a->pos = start;
	}
	return rc ? rc : a->pos < a->end ? -EAGAIN : 0;
}

int fs_fallocate(struct vmfs *fs, uint64_t addr, int mode, uint64_t off, uint64_t len)
{
	struct falloc a = {.off = off, .end = off + len, .pos = off};
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	struct fs_inode *ino;
	int rc = fd ? -EAGAIN : -ENOMEM, busy = 0;

	a.keep = !!(mode & VMFS_FALLOC_KEEP_SIZE);
	a.eager = !!(mode & FS_FALLOC_EAGER);
	a.op = mode & VMFS_FALLOC_PUNCH_HOLE   ? OP_PUNCH
	       : mode & VMFS_FALLOC_ZERO_RANGE ? OP_ZERO
					       : OP_ALLOC;
	if (a.end > vmfs_fd_max_size(fs->vh.block_size) || a.end < off)
		rc = fd ? -EFBIG : rc;
	ino = data_excl(fs, addr);
	while (rc == -EAGAIN) {
		uint64_t before = a.pos;

		rc = falloc_step(fs, addr, &a, fd);
		if (rc == -EAGAIN && a.pos == before) {
			if (busy >= 20)
				break;
			fs_backoff(fs, busy++);
		} else if (rc == -EAGAIN) {
			busy = 0;
		}
	}
	data_excl_end(ino);
	free(fd);
	return rc;
}
