/*
 * fusemount_native.c - vmfsmount on a native libvmfs volume: a read-write
 * FUSE mount (libfuse3 low-level API) that is one host of the cluster,
 * implemented directly over the by-inode calls of libvmfs/vmfs.h
 * (fs_at.c: vmfs_lookup(), vmfs_getattr_ino(), vmfs_create_at()...).
 *
 * Design note
 *
 *  - Nodes. The kernel names files by node id; a node is one life of one
 *    FD: (FD address, generation), so a file another host removed, whose
 *    FD may since hold a new file, stays a different node and its calls
 *    fail with ESTALE (the library checks the generation under the file's
 *    lock before writing anything). The table of nodes is keyed by (address,
 *    generation), the node id is the node's address (FUSE_ROOT_ID: the
 *    root), each node counts the kernel's lookups and is freed when FORGET
 *    (FORGET_MULTI) brings the count to 0; a mutex guards the table. No
 *    request walks a path from the root, and libfuse keeps no path table
 *    nor path locks (the high-level API serialised requests on them).
 *
 *  - One vmfsmount process = one vmfs_mount() = one host: one heartbeat
 *    slot (hostname from -o host=NAME), one journal. Several mounts of one
 *    image (or LUN), in one machine or several, are several hosts and
 *    coordinate through the disk only.
 *
 *  - Coherence between hosts. The kernel caches nothing: entry, attribute
 *    and negative timeouts are 0 (every lookup and stat reaches the
 *    library, which reads the disk; an entry_timeout, attr_timeout or
 *    negative_timeout the user sets with -o is parsed here and used:
 *    faster lookups, other hosts' changes seen up to that late), and
 *    every file is opened with direct_io (no page cache: each read and
 *    write reaches the library, so data written on one host is seen by
 *    the next read on any other). The price: no shared writable mmap and
 *    no exec from the mount (direct_io), and a stat costs a read of the
 *    inode (a lookup one of the directory). A VM datastore needs neither
 *    mmap nor exec; correctness across hosts matters more.
 *
 *  - Open files keep VMFS semantics (vmfs.h): a write-open holds the
 *    file's lock exclusively until its last close on this host, so a
 *    write-open on another host fails with EBUSY ("Device or resource
 *    busy"). The library would wait up to its lock timeout (2 x (heartbeat
 *    timeout + interval), 10-18 s) before saying so, with the mount's
 *    mutex held; an interactive open should fail at once. So opens use
 *    VMFS_O_NOWAIT and retry for open_wait ms (default 250: covers another
 *    host's short transaction on the same file). -o open_wait=MS at least
 *    the lock timeout uses the library's waiting open instead, which also
 *    breaks the lock of a host that died holding the file open (otherwise
 *    the first operation that waits for that lock does it).
 *
 *  - Durability. Without -o keep_locks each change is durable when its
 *    request returns; with it the library commits changes in groups
 *    (within ~10 ms), and fsync(2) of a file (fsync) or a directory
 *    (fsyncdir -> vmfs_sync()) returns once everything before it is.
 *
 *  - Unlinked open files: the library frees an unlinked file at its last
 *    close on this host; until then its node works as on ext4 (fstat with
 *    nlink 0, fchmod, fchown, futimens, ftruncate, xattrs: by inode).
 *
 *  - Threads and processes. The FUSE loop is multi-threaded (libfuse's
 *    fuse_session_loop_mt, at most -o threads=N workers, default 32; -s or
 *    threads=1: fuse_session_loop): the library serialises metadata operations with
 *    its mount mutex, but reads and overwrites of a file this host holds
 *    open (SH or EX; not MW) run outside it (cached mapping, per-file rw
 *    lock; see
 *    libvmfs/fs_file.c), so concurrent requests on the data path overlap
 *    their device I/O. max_background is raised so that a queue depth of
 *    32 from one process reaches us, and max_write to 1 MiB (fewer, larger
 *    requests). Nothing here keeps state shared between requests but the
 *    mount, the node table (its mutex) and the counters of logged errors
 *    (atomic). A directory is read whole at opendir (and again at a rewind
 *    after its end); readdir serves that snapshot by offset. The lock
 *    manager runs a heartbeat thread, which a fork() would lose, so the
 *    library is mounted after daemonising: without -f the process forks
 *    first, the child mounts the volume and then FUSE, and tells the
 *    parent through a pipe; the parent exits 0 once the mount is ready, or
 *    with the child's status after the child printed why it failed.
 *
 *  - Unmount (fusermount3 -u, umount, or SIGTERM/SIGINT/SIGHUP): the loop
 *    ends, FUSE is unmounted, then vmfs_umount() closes the files still
 *    open, releases the locks and leaves the heartbeat slot.
 *
 *  - Operations map one to one onto vmfs.h (fallocate modes and xattr
 *    flags have Linux's values), except POSIX ACL xattrs (fmn_setxattr():
 *    an ACL equal to the mode becomes the mode, others are refused). rename: RENAME_NOREPLACE and
 *    RENAME_EXCHANGE map to vmfs_rename_at() (atomic across hosts);
 *    RENAME_WHITEOUT: EINVAL. mknod makes FIFOs, character and block
 *    devices and sockets (vmfs_mknod_at(): type, rdev and owner in one
 *    transaction); the kernel serves their I/O itself (pipe buffers,
 *    device drivers, socket layer) without opening them through us, and
 *    the library refuses to open them (ENXIO). Device nodes work only on
 *    a mount with -o dev (FUSE mounts are nodev unless root asks).
 *    -o ro mounts the library read-only (no heartbeat slot, no locks,
 *    nothing written).
 *
 *  - Owners: a create, mkdir, symlink or mknod passes the caller's uid/gid
 *    to the library (vmfs_create_at(), vmfs_mkdir_at(), vmfs_symlink_at(),
 *    vmfs_mknod_at()), which sets them in the transaction that makes the
 *    object: one transaction, nothing to undo if a second step failed.
 *
 *  - Errors: negative errnos pass through; -EUCLEAN (corrupt metadata) and
 *    the private codes of the lower layers (fenced host, device errors)
 *    become EIO, logged once with vmfs_errmsg()/vmfs_strerror() on stderr
 *    (in the foreground; a daemon's stderr is /dev/null).
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "format.h"
#include "fusemount.h"
#include "tool.h"
#include "vmfs.h"

#define FMN_OPEN_WAIT_MS 250
#define FMN_THREADS	 32
#define FMN_NBUCKETS	 4096

/* A node the kernel knows: one life of one FD (address, generation). */
struct node {
	uint64_t addr, gen;
	uint64_t nlookup;
	struct node *next; /* hash chain */
};

struct fmn {
	struct vmfs *fs;
	uint32_t uid, gid; /* owner the library gives new files */
	uint32_t blksize;
	long open_wait_ms;
	unsigned lock_tmo_ms; /* the library's lock timeout */
	int ro;
	int threads; /* most FUSE workers (1: single-threaded loop) */
	double entry_tmo, attr_tmo, neg_tmo;
	char fopts[FM_OPTS_MAX]; /* the FUSE options given with -o, ours taken out */
	int logged_fatal;	 /* atomic */
	struct node root;	 /* FUSE_ROOT_ID */
	pthread_mutex_t nmu;	 /* guards the node table */
	struct node *nodes[FMN_NBUCKETS];
};

struct fmn_file {
	struct vmfs_file *f;
	int append;
};

static struct fmn *fmn_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fmn_file *fh_of(const struct fuse_file_info *fi)
{
	return (struct fmn_file *)(uintptr_t)fi->fh;
}

/* ---- nodes --------------------------------------------------------------------------- */

static struct node *node_of(struct fmn *m, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &m->root : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct fmn *m, struct node *n)
{
	return n == &m->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static unsigned bucket(uint64_t addr, uint64_t gen)
{
	return (unsigned)(((addr * 0x9e3779b97f4a7c15ull) ^ gen) >> 40) % FMN_NBUCKETS;
}

/* The node of (addr, gen), its lookup count raised by one. */
static struct node *node_get(struct fmn *m, uint64_t addr, uint64_t gen)
{
	struct node *n;
	unsigned b = bucket(addr, gen);

	if (addr == m->root.addr && gen == m->root.gen)
		return &m->root;
	pthread_mutex_lock(&m->nmu);
	for (n = m->nodes[b]; n; n = n->next)
		if (n->addr == addr && n->gen == gen)
			break;
	if (!n && (n = calloc(1, sizeof(*n)))) {
		n->addr = addr;
		n->gen = gen;
		n->next = m->nodes[b];
		m->nodes[b] = n;
	}
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&m->nmu);
	return n;
}

static void node_forget(struct fmn *m, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = node_of(m, ino);

	if (n == &m->root)
		return;
	pthread_mutex_lock(&m->nmu);
	if (n->nlookup > nlookup) {
		n->nlookup -= nlookup;
	} else {
		for (struct node **p = &m->nodes[bucket(n->addr, n->gen)]; *p; p = &(*p)->next)
			if (*p == n) {
				*p = n->next;
				break;
			}
		free(n);
	}
	pthread_mutex_unlock(&m->nmu);
}

static void nodes_free(struct fmn *m)
{
	for (unsigned b = 0; b < FMN_NBUCKETS; b++)
		while (m->nodes[b]) {
			struct node *n = m->nodes[b];

			m->nodes[b] = n->next;
			free(n);
		}
}

/* ---- replies ------------------------------------------------------------------------- */

/* Maps a library error to an errno the kernel accepts. */
static int err(struct fmn *m, int rc, const char *op, const char *name)
{
	if (rc >= 0 || (rc > -512 && rc != -EUCLEAN))
		return rc;
	if (rc == -EUCLEAN)
		fprintf(stderr, "vmfsmount: %s %s: %s\n", op, name ? name : "(inode)",
			vmfs_errmsg(m->fs));
	else if (!__atomic_fetch_add(&m->logged_fatal, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "vmfsmount: %s %s: %s\n", op, name ? name : "(inode)",
			vmfs_strerror(rc));
	return -EIO;
}

static void reply_rc(fuse_req_t req, int rc, const char *op, const char *name)
{
	fuse_reply_err(req, -err(fmn_of(req), rc, op, name));
}

static void ts_of(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

static void to_stat(const struct vmfs_stat *s, uint32_t blksize, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = s->ino;
	st->st_mode = s->mode;
	st->st_nlink = s->nlink;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_size = (off_t)s->size;
	st->st_blocks = (blkcnt_t)s->blocks;
	st->st_blksize = (blksize_t)blksize;
	st->st_rdev = (dev_t)s->rdev;
	ts_of(s->atime_ns, &st->st_atim);
	ts_of(s->mtime_ns, &st->st_mtim);
	ts_of(s->ctime_ns, &st->st_ctim);
}

/* The entry of a file found or made (st), its node counted. */
static int entry_of(struct fmn *m, const struct vmfs_stat *st, struct fuse_entry_param *e)
{
	struct node *n = node_get(m, st->ino, st->generation);

	if (!n)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->ino = ino_of(m, n);
	e->generation = st->generation;
	to_stat(st, m->blksize, &e->attr);
	e->attr_timeout = m->attr_tmo;
	e->entry_timeout = m->entry_tmo;
	return 0;
}

/* Looks name up in parent and replies with its entry (rc: the error of the
 * operation that made it, replied instead when not 0). */
static void reply_lookup(fuse_req_t req, fuse_ino_t parent, const char *name, int rc,
			 const char *op)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent);
	struct fuse_entry_param e;
	struct vmfs_stat st;

	if (!rc)
		rc = vmfs_lookup(m->fs, p->addr, p->gen, name, &st);
	if (!rc)
		rc = entry_of(m, &st, &e);
	if (rc == -ENOENT && !strcmp(op, "lookup") && m->neg_tmo > 0) {
		memset(&e, 0, sizeof(e)); /* a negative entry the kernel may keep */
		e.entry_timeout = m->neg_tmo;
		rc = 0;
	}
	if (rc)
		reply_rc(req, rc, op, name);
	else
		fuse_reply_entry(req, &e);
}

/* ---- attributes ---------------------------------------------------------------------- */

static void fmn_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_lookup(req, parent, name, 0, "lookup");
}

static void fmn_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(fmn_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fmn_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(fmn_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static int stat_ino(struct fmn *m, fuse_ino_t ino, struct fuse_file_info *fi, struct vmfs_stat *s)
{
	struct node *n = node_of(m, ino);

	if (fi && fi->fh)
		return vmfs_fstat(fh_of(fi)->f, s);
	return vmfs_getattr_ino(m->fs, n->addr, n->gen, s);
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, const char *op)
{
	struct fmn *m = fmn_of(req);
	struct vmfs_stat s;
	struct stat st;
	int rc = stat_ino(m, ino, fi, &s);

	if (rc) {
		reply_rc(req, rc, op, NULL);
		return;
	}
	to_stat(&s, m->blksize, &st);
	fuse_reply_attr(req, &st, m->attr_tmo);
}

static void fmn_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	reply_attr(req, ino, fi, "stat");
}

static uint64_t ns_of(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static void fmn_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino);
	struct vmfs_setattr sa;
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= VMFS_SET_MODE;
		sa.mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= VMFS_SET_UID;
		sa.uid = (uint32_t)attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= VMFS_SET_GID;
		sa.gid = (uint32_t)attr->st_gid;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		sa.valid |= VMFS_SET_ATIME;
		sa.atime_ns =
		    to_set & FUSE_SET_ATTR_ATIME_NOW ? VMFS_TIME_NOW : ns_of(&attr->st_atim);
		if (!(to_set & FUSE_SET_ATTR_ATIME_NOW) && attr->st_atim.tv_sec < 0)
			rc = -EINVAL; /* the format stores unsigned ns since 1970 */
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		sa.valid |= VMFS_SET_MTIME;
		sa.mtime_ns =
		    to_set & FUSE_SET_ATTR_MTIME_NOW ? VMFS_TIME_NOW : ns_of(&attr->st_mtim);
		if (!(to_set & FUSE_SET_ATTR_MTIME_NOW) && attr->st_mtim.tv_sec < 0)
			rc = -EINVAL;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size < 0)
		rc = -EINVAL;
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (fi && fi->fh)
			rc = vmfs_ftruncate(fh_of(fi)->f, (uint64_t)attr->st_size);
		else
			sa.valid |= VMFS_SET_SIZE;
		sa.size = (uint64_t)attr->st_size;
	}
	if (!rc && sa.valid)
		rc = vmfs_setattr_ino(m->fs, n->addr, n->gen, &sa);
	if (rc) {
		reply_rc(req, rc, "setattr", NULL);
		return;
	}
	reply_attr(req, ino, fi, "setattr");
}

static void fmn_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fmn *m = fmn_of(req);
	struct vmfs_statfs s;
	struct statvfs sv;
	int rc = vmfs_statfs(m->fs, &s);

	(void)ino;
	if (rc < 0) {
		reply_rc(req, rc, "statfs", NULL);
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = s.block_size;
	sv.f_blocks = s.blocks;
	sv.f_bfree = sv.f_bavail = s.blocks_free;
	sv.f_files = s.files;
	sv.f_ffree = sv.f_favail = s.files_free;
	sv.f_namemax = s.name_max;
	sv.f_flag = m->ro ? ST_RDONLY : 0;
	fuse_reply_statfs(req, &sv);
}

/* ---- names --------------------------------------------------------------------------- */

/* New objects belong to the caller, not to the mount's owner: the owner
 * goes into the transaction that creates them. */
static struct vmfs_owner *caller(fuse_req_t req, struct vmfs_owner *own)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	own->uid = (uint32_t)c->uid;
	own->gid = (uint32_t)c->gid;
	return own;
}

static void fmn_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent);
	struct vmfs_owner own;

	reply_lookup(req, parent, name,
		     vmfs_mkdir_at(m->fs, p->addr, p->gen, name, mode & 07777, caller(req, &own)),
		     "mkdir");
}

/* Regular files (the kernel uses create for those), FIFOs, character and
 * block devices, sockets: the node with its mode, rdev and the caller as
 * owner, in one transaction. */
static void fmn_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent);
	struct vmfs_owner own;

	reply_lookup(req, parent, name,
		     vmfs_mknod_at(m->fs, p->addr, p->gen, name, (uint32_t)mode, (uint64_t)rdev,
				   caller(req, &own)),
		     "mknod");
}

static void fmn_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent);
	struct vmfs_owner own;

	reply_lookup(req, parent, name,
		     vmfs_symlink_at(m->fs, target, p->addr, p->gen, name, caller(req, &own)),
		     "symlink");
}

static void fmn_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino), *p = node_of(m, newparent);

	reply_lookup(req, newparent, newname,
		     vmfs_link_at(m->fs, n->addr, n->gen, p->addr, p->gen, newname), "link");
}

static void fmn_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent);

	reply_rc(req, vmfs_unlink_at(m->fs, p->addr, p->gen, name), "unlink", name);
}

static void fmn_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent);

	reply_rc(req, vmfs_rmdir_at(m->fs, p->addr, p->gen, name), "rmdir", name);
}

static void fmn_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	struct fmn *m = fmn_of(req);
	struct node *p = node_of(m, parent), *q = node_of(m, newparent);
	unsigned f = 0;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: not supported */
		return;
	}
	f |= flags & RENAME_NOREPLACE ? VMFS_RENAME_NOREPLACE : 0;
	f |= flags & RENAME_EXCHANGE ? VMFS_RENAME_EXCHANGE : 0;
	/* Onto another link of the same file: the library does nothing, as
	 * POSIX wants (tests/fuse/posix.py checks it). */
	reply_rc(req, vmfs_rename_at(m->fs, p->addr, p->gen, name, q->addr, q->gen, newname, f),
		 "rename", name);
}

static void fmn_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino);
	char buf[PATH_MAX + 1];
	int rc = vmfs_readlink_ino(m->fs, n->addr, n->gen, buf, sizeof(buf));

	if (rc < 0) {
		reply_rc(req, rc, "readlink", NULL);
		return;
	}
	fuse_reply_readlink(req, buf);
}

/* ---- directories: opendir reads the entries, readdir serves them ------------------- */

struct dent {
	uint64_t ino;
	unsigned type;
	char *name;
};

struct dlist {
	pthread_mutex_t mu;
	struct dent *e;
	size_t n, cap;
};

static void dlist_clear(struct dlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	l->e = NULL;
	l->n = l->cap = 0;
}

static int dlist_cb(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct dlist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct dent *e = realloc(l->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	l->e[l->n].name = strdup(name);
	if (!l->e[l->n].name)
		return -ENOMEM;
	l->e[l->n].ino = ino;
	l->e[l->n++].type = type;
	return 0;
}

static int dlist_fill(struct fmn *m, struct node *n, struct dlist *l)
{
	int rc;

	dlist_clear(l);
	rc = vmfs_readdir_ino(m->fs, n->addr, n->gen, dlist_cb, l);
	if (rc)
		dlist_clear(l);
	return rc;
}

static void fmn_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fmn *m = fmn_of(req);
	struct dlist *l = calloc(1, sizeof(*l));
	int rc = l ? dlist_fill(m, node_of(m, ino), l) : -ENOMEM;

	if (rc) {
		free(l);
		reply_rc(req, rc, "opendir", NULL);
		return;
	}
	pthread_mutex_init(&l->mu, NULL);
	fi->fh = (uint64_t)(uintptr_t)l;
	fuse_reply_open(req, fi);
}

static void fmn_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	struct fmn *m = fmn_of(req);
	struct dlist *l = (struct dlist *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;
	int rc = buf ? 0 : -ENOMEM;

	pthread_mutex_lock(&l->mu);
	if (!rc && off == 0 && l->n == 0)
		rc = dlist_fill(m, node_of(m, ino), l); /* rewinddir after the end */
	for (size_t i = (size_t)(off < 0 ? 0 : off); !rc && i < l->n; i++) {
		struct stat st;
		size_t len;

		memset(&st, 0, sizeof(st));
		st.st_ino = l->e[i].ino;
		/* d_type: saves ls, find and os.walk a stat per entry */
		st.st_mode = vmfs_ftype_mode(l->e[i].type);
		len = fuse_add_direntry(req, buf + used, size - used, l->e[i].name, &st,
					(off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	if (!rc && used == 0 && off > 0)
		dlist_clear(l); /* at the end: a rewind reads the directory again */
	pthread_mutex_unlock(&l->mu);
	if (rc)
		reply_rc(req, rc, "readdir", NULL);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fmn_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dlist *l = (struct dlist *)(uintptr_t)fi->fh;

	(void)ino;
	dlist_clear(l);
	pthread_mutex_destroy(&l->mu);
	free(l);
	fuse_reply_err(req, 0);
}

/* ---- files --------------------------------------------------------------------------- */

/* An open (n: the node) or a create (n NULL: name in directory p), with
 * VMFS_O_NOWAIT retried for open_wait ms. */
static int open_nowait(struct fmn *m, struct node *n, struct node *p, const char *name, int flags,
		       uint32_t mode, const struct vmfs_owner *own, struct vmfs_file **out)
{
	struct timespec t0, t;
	long waited = 0, pause_us = 2000;
	int wait = m->open_wait_ms >= (long)m->lock_tmo_ms, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int f = flags | (wait ? 0 : VMFS_O_NOWAIT);

		/* -EBUSY means nothing was created (vmfs_create), so a retry
		 * of an O_EXCL create cannot meet its own file */
		rc = n ? vmfs_open_ino(m->fs, n->addr, n->gen, f, out)
		       : vmfs_create_at(m->fs, p->addr, p->gen, name, f, mode, own, out);
		if (wait || rc != -EBUSY || waited >= m->open_wait_ms)
			return rc;
		usleep((useconds_t)pause_us);
		pause_us = pause_us < 64000 ? pause_us * 2 : pause_us;
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
}

static void fmn_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fmn *m = fmn_of(req);
	struct fmn_file *h = calloc(1, sizeof(*h));
	int rc = h ? open_nowait(m, node_of(m, ino), NULL, NULL, fi->flags & (O_ACCMODE | O_TRUNC),
				 0, NULL, &h->f)
		   : -ENOMEM;

	if (rc < 0) {
		free(h);
		reply_rc(req, rc, "open", NULL);
		return;
	}
	h->append = !!(fi->flags & O_APPEND);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) == -ENOENT) { /* interrupted */
		vmfs_close(h->f);
		free(h);
	}
}

static void fmn_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct fmn *m = fmn_of(req);
	int flags = fi->flags & (O_ACCMODE | O_TRUNC | O_EXCL);
	struct fmn_file *h = calloc(1, sizeof(*h));
	struct fuse_entry_param e;
	struct vmfs_owner own;
	struct vmfs_stat st;
	int rc = h ? open_nowait(m, NULL, node_of(m, parent), name, flags | O_CREAT, mode & 07777,
				 caller(req, &own), &h->f)
		   : -ENOMEM;

	if (rc < 0) {
		free(h);
		reply_rc(req, rc, "create", name);
		return;
	}
	rc = vmfs_fstat(h->f, &st);
	if (!rc)
		rc = entry_of(m, &st, &e);
	if (rc) {
		vmfs_close(h->f);
		free(h);
		reply_rc(req, rc, "create", name);
		return;
	}
	h->append = !!(fi->flags & O_APPEND);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) { /* interrupted */
		node_forget(m, e.ino, 1);
		vmfs_close(h->f);
		free(h);
	}
}

static void fmn_read(fuse_req_t req, fuse_ino_t ino, size_t len, off_t off,
		     struct fuse_file_info *fi)
{
	char *buf = malloc(len ? len : 1);
	ssize_t n;

	(void)ino;
	if (off < 0 || !buf) {
		free(buf);
		fuse_reply_err(req, buf ? EINVAL : ENOMEM);
		return;
	}
	n = vmfs_read(fh_of(fi)->f, buf, len, (uint64_t)off);
	if (n < 0)
		reply_rc(req, (int)n, "read", NULL);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* A write by an unprivileged process clears setuid and setgid, as on
 * ext4 (the kernel leaves it to us with direct_io). */
static void kill_suid(fuse_req_t req, struct fmn *m, struct node *n, struct fmn_file *h)
{
	struct vmfs_setattr sa = {.valid = VMFS_SET_MODE};
	struct vmfs_stat st;

	if (fuse_req_ctx(req)->uid == 0 || vmfs_fstat(h->f, &st) ||
	    !(st.mode & (S_ISUID | S_ISGID)))
		return;
	sa.mode = st.mode & 07777 & ~(uint32_t)(S_ISUID | S_ISGID);
	vmfs_setattr_ino(m->fs, n->addr, n->gen, &sa);
}

static void fmn_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t len, off_t off,
		      struct fuse_file_info *fi)
{
	struct fmn *m = fmn_of(req);
	struct fmn_file *h = fh_of(fi);
	ssize_t n;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (h->append) {
		/* The kernel's idea of the size may be stale (another host). */
		struct vmfs_stat st;
		int rc = vmfs_fstat(h->f, &st);

		if (rc < 0) {
			reply_rc(req, rc, "write", NULL);
			return;
		}
		off = (off_t)st.size;
	}
	n = vmfs_write(h->f, buf, len, (uint64_t)off);
	if (n > 0)
		kill_suid(req, m, node_of(m, ino), h);
	if (n < 0)
		reply_rc(req, (int)n, "write", NULL);
	else
		fuse_reply_write(req, (size_t)n);
}

static void fmn_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	reply_rc(req, vmfs_fsync(fh_of(fi)->f), "fsync", NULL);
}

/* fsync(2) of a directory: what this mount changed is made durable (with
 * keep_locks, the running group of commits). Without this handler the
 * kernel would answer 0 to it without asking. */
static void fmn_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	reply_rc(req, vmfs_sync(fmn_of(req)->fs), "fsyncdir", NULL);
}

static void fmn_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0); /* nothing is buffered here: writes went to the library */
}

static void fmn_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fmn_file *h = fh_of(fi);
	int rc = vmfs_close(h->f);

	(void)ino;
	free(h);
	reply_rc(req, rc, "close", NULL);
}

static void fmn_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	(void)ino;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!fi || !fi->fh) {
		fuse_reply_err(req, EBADF);
		return;
	}
	reply_rc(req, vmfs_fallocate(fh_of(fi)->f, mode, (uint64_t)off, (uint64_t)len), "fallocate",
		 NULL);
}

/* ---- extended attributes (the kernel checks namespaces) ------------------------------ */

/* POSIX ACLs. This mount does not enforce ACLs (no FUSE_CAP_POSIX_ACL), so
 * an access ACL that only restates the mode (owner, group and other
 * entries: what cp -a, tar and rsync set on every file) is applied as the
 * mode bits, as ext4 does with such an ACL, and not stored; an extended
 * access ACL (named users or groups, a mask) and any default ACL are
 * refused with EOPNOTSUPP instead of being stored and ignored. Returns 1
 * and the permission bits for a minimal ACL, 0 for another, <0 when the
 * value is not an ACL (Linux's xattr form: version 2, then 8-byte
 * entries: tag u16, perm u16, id u32, little-endian). */
#define ACL_USER_OBJ  0x01
#define ACL_GROUP_OBJ 0x04
#define ACL_OTHER     0x20

static int acl_minimal(const uint8_t *v, size_t size, uint32_t *perm)
{
	unsigned seen = 0;

	*perm = 0;
	if (size < 4 || (size - 4) % 8 ||
	    (v[0] | v[1] << 8 | v[2] << 16 | (uint32_t)v[3] << 24) != 2)
		return -EINVAL;
	for (size_t o = 4; o < size; o += 8) {
		unsigned tag = v[o] | v[o + 1] << 8, p = (v[o + 2] | v[o + 3] << 8) & 7;
		unsigned shift = tag == ACL_USER_OBJ ? 6 : tag == ACL_GROUP_OBJ ? 3 : 0;

		if ((tag != ACL_USER_OBJ && tag != ACL_GROUP_OBJ && tag != ACL_OTHER) ||
		    (seen & tag))
			return 0;
		seen |= tag;
		*perm |= p << shift;
	}
	return seen == (ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_OTHER);
}

static void fmn_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino);
	struct vmfs_setattr sa = {.valid = VMFS_SET_MODE};
	struct vmfs_stat st;
	uint32_t perm;
	int rc;

	if (!strcmp(name, "system.posix_acl_default")) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (strcmp(name, "system.posix_acl_access")) {
		reply_rc(req, vmfs_setxattr_ino(m->fs, n->addr, n->gen, name, value, size, flags),
			 "setxattr", name);
		return;
	}
	rc = acl_minimal((const uint8_t *)value, size, &perm);
	if (rc <= 0) {
		fuse_reply_err(req, rc < 0 ? -rc : EOPNOTSUPP);
		return;
	}
	rc = vmfs_getattr_ino(m->fs, n->addr, n->gen, &st);
	sa.mode = (st.mode & 07000) | perm;
	if (!rc)
		rc = vmfs_setattr_ino(m->fs, n->addr, n->gen, &sa);
	reply_rc(req, rc, "setxattr", name);
}

/* getxattr and listxattr: size 0 asks for the length. */
static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size, const char *op)
{
	if (n < 0)
		reply_rc(req, (int)n, op, NULL);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void fmn_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino);
	char *buf = size ? malloc(size) : NULL;
	ssize_t r =
	    size && !buf ? -ENOMEM : vmfs_getxattr_ino(m->fs, n->addr, n->gen, name, buf, size);

	reply_xattr(req, r, buf, size, "getxattr");
	free(buf);
}

static void fmn_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino);
	char *buf = size ? malloc(size) : NULL;
	ssize_t r = size && !buf ? -ENOMEM : vmfs_listxattr_ino(m->fs, n->addr, n->gen, buf, size);

	reply_xattr(req, r, buf, size, "listxattr");
	free(buf);
}

static void fmn_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fmn *m = fmn_of(req);
	struct node *n = node_of(m, ino);

	reply_rc(req, vmfs_removexattr_ino(m->fs, n->addr, n->gen, name), "removexattr", name);
}

static void fmn_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fmn *m = userdata;

	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC; /* O_TRUNC under the open's lock */
	if (m->threads > 1) {
		/* async direct I/O is background work: let a queue of 32 through */
		conn->max_background = 64;
		conn->congestion_threshold = 48;
	}
	conn->max_write = 1u << 20; /* also sets max_pages: reads of 1 MiB too */
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_HANDLE_KILLPRIV);
}

static const struct fuse_lowlevel_ops fmn_ops = {
    .init = fmn_init,
    .lookup = fmn_lookup,
    .forget = fmn_forget,
    .forget_multi = fmn_forget_multi,
    .getattr = fmn_getattr,
    .setattr = fmn_setattr,
    .readlink = fmn_readlink,
    .mknod = fmn_mknod,
    .mkdir = fmn_mkdir,
    .unlink = fmn_unlink,
    .rmdir = fmn_rmdir,
    .symlink = fmn_symlink,
    .rename = fmn_rename,
    .link = fmn_link,
    .open = fmn_open,
    .read = fmn_read,
    .write = fmn_write,
    .flush = fmn_flush,
    .release = fmn_release,
    .fsync = fmn_fsync,
    .fsyncdir = fmn_fsyncdir,
    .opendir = fmn_opendir,
    .readdir = fmn_readdir,
    .releasedir = fmn_releasedir,
    .statfs = fmn_statfs,
    .setxattr = fmn_setxattr,
    .getxattr = fmn_getxattr,
    .listxattr = fmn_listxattr,
    .removexattr = fmn_removexattr,
    .create = fmn_create,
    .fallocate = fmn_fallocate,
};

/* ---- mounting ------------------------------------------------------------------------ */

/* The library's default lock timeout: 2 x (heartbeat timeout + interval)
 * of the volume (vmfs.h does not report it). UINT_MAX if unreadable. */
static unsigned lock_timeout(const char *uri)
{
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256];
	unsigned t = UINT_MAX;

	if (bdev_open(uri, BDEV_O_RDONLY, &bd) < 0)
		return t;
	if (!vmfs_vh_read(bd, &vh, why, sizeof(why)))
		t = 2 * vh.hb_timeout_ms + 2 * vh.hb_interval_ms;
	bdev_close(bd);
	return t;
}

static int mount_volume(const struct fm_args *a, struct fmn *m)
{
	struct vmfs_mount_opts o;
	struct vmfs_statfs s;
	struct vmfs_stat st;
	int rc;

	memset(&o, 0, sizeof(o));
	o.hostname = a->host;
	o.read_only = a->ro;
	o.cache_mb = (int)a->cache_mb;
	o.keep_locks = a->keep_locks;
	o.uid = m->uid = (uint32_t)getuid();
	o.gid = m->gid = (uint32_t)getgid();
	rc = vmfs_mount(a->dev, &o, &m->fs);
	if (rc < 0) {
		const char *why = vmfs_errmsg(NULL);

		tool_err(NULL, "%s: cannot mount: %s%s%s", a->dev, vmfs_strerror(rc),
			 why && *why ? ": " : "", why ? why : "");
		return rc;
	}
	rc = vmfs_statfs(m->fs, &s);
	if (rc < 0) {
		tool_err(NULL, "%s: cannot read the volume: %s", a->dev, vmfs_strerror(rc));
		vmfs_umount(m->fs);
		return rc;
	}
	m->blksize = s.block_size > (1u << 20) ? (1u << 20) : s.block_size;
	m->ro = a->ro;
	m->open_wait_ms = a->open_wait_ms >= 0 ? a->open_wait_ms : FMN_OPEN_WAIT_MS;
	m->threads = a->threads > 0 ? a->threads : FMN_THREADS;
	m->lock_tmo_ms = lock_timeout(a->dev);
	rc = vmfs_getattr(m->fs, "/", &st);
	if (rc < 0) {
		tool_err(NULL, "%s: cannot read the root: %s", a->dev, vmfs_strerror(rc));
		vmfs_umount(m->fs);
		return rc;
	}
	m->root.addr = st.ino;
	m->root.gen = st.generation;
	return 0;
}

/* The kernel's cache timeouts (seconds, 0 unless the user traded
 * coherence for speed with -o entry_timeout= ...), taken out of the FUSE
 * options (the low-level session does not know them). */
static int take_timeouts(const struct fm_args *a, struct fmn *m)
{
	static const char *const names[] = {"entry_timeout=", "attr_timeout=", "negative_timeout="};
	double *vals[] = {&m->entry_tmo, &m->attr_tmo, &m->neg_tmo};
	char list[FM_OPTS_MAX], *save = NULL;
	size_t n = 0;

	snprintf(list, sizeof(list), "%s", a->fopts);
	m->fopts[0] = 0;
	for (char *o = strtok_r(list, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		int ours = 0;

		for (int k = 0; k < 3 && !ours; k++) {
			size_t l = strlen(names[k]);
			char *end;

			if (strncmp(o, names[k], l))
				continue;
			errno = 0;
			*vals[k] = strtod(o + l, &end);
			if (errno || end == o + l || *end || *vals[k] < 0) {
				tool_err(NULL, "%s: expected seconds (a number >= 0)", o);
				return -1;
			}
			ours = 1;
		}
		if (!ours)
			n += (size_t)snprintf(m->fopts + n, sizeof(m->fopts) - n, "%s%s",
					      n ? "," : "", o);
	}
	return 0;
}

/* The low-level session: program, -o OPTIONS, [-d]. */
static struct fuse_session *new_session(const struct fm_args *a, struct fmn *m)
{
	char opts[FM_OPTS_MAX + 4400], *argv[4];
	struct fuse_args args;
	struct fuse_session *se;
	char dev[4100];
	int n;

	if (take_timeouts(a, m) < 0)
		return NULL;
	/* A ',' in the device name would split the option list. */
	snprintf(dev, sizeof(dev), "%s", a->dev);
	for (char *c = dev; *c; c++)
		if (*c == ',')
			*c = '_';
	n = snprintf(opts, sizeof(opts), "%s,fsname=%s,subtype=vmfs%s%s", a->ro ? "ro" : "rw", dev,
		     m->fopts[0] ? "," : "", m->fopts);
	if (n < 0 || (size_t)n >= sizeof(opts)) {
		tool_err(NULL, "mount options too long");
		return NULL;
	}
	argv[0] = a->argv0;
	argv[1] = (char *)"-o";
	argv[2] = opts;
	argv[3] = a->debug ? (char *)"-d" : NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(a->debug ? 4 : 3, argv);
	se = fuse_session_new(&args, &fmn_ops, sizeof(fmn_ops), m);
	fuse_opt_free_args(&args);
	if (!se)
		tool_err(NULL, "%s: bad FUSE options '%s'", a->mnt, m->fopts);
	return se;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Serves requests until unmounted: fuse_session_loop_mt with at most
 * `threads` workers (kept once started), or fuse_session_loop for one. */
static int loop(struct fuse_session *se, int threads)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (threads <= 1)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)threads);
	fuse_loop_cfg_set_idle_threads(cfg, (unsigned)threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/* Mounts, reports readiness on ready_fd (-1: foreground), serves. */
static int serve(const struct fm_args *a, const char *mnt, int ready_fd)
{
	struct fmn *m = calloc(1, sizeof(*m));
	struct fuse_session *se;
	int rc, urc;

	if (!m)
		return 1;
	pthread_mutex_init(&m->nmu, NULL);
	if (mount_volume(a, m) < 0) {
		free(m);
		return 1;
	}
	se = new_session(a, m);
	if (!se) {
		vmfs_umount(m->fs);
		free(m);
		return 1;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		tool_err(NULL, "%s: cannot mount on %s", a->dev, mnt);
		fuse_session_destroy(se);
		vmfs_umount(m->fs);
		free(m);
		return 1;
	}
	rc = fuse_set_signal_handlers(se);
	if (ready_fd >= 0) {
		if (chdir("/") < 0)
			rc = rc ? rc : -1;
		detach_stdio();
		if (write(ready_fd, "1", 1) != 1)
			rc = rc ? rc : -1;
		close(ready_fd);
	}
	if (!rc)
		rc = loop(se, m->threads);
	if (rc > 0)
		rc = 0; /* libfuse >= 3.12 returns the signal that ended the loop */
	fuse_remove_signal_handlers(se);
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	urc = vmfs_umount(m->fs);
	if (urc < 0)
		tool_err(NULL, "%s: unmount: %s", a->dev, vmfs_strerror(urc));
	nodes_free(m);
	pthread_mutex_destroy(&m->nmu);
	free(m);
	return rc || urc ? 1 : 0;
}

int fm_native_main(const struct fm_args *a)
{
	char mnt[PATH_MAX];
	int p[2], st;
	pid_t pid;
	char c;

	if (!realpath(a->mnt, mnt)) {
		tool_err(NULL, "%s: mount point: %s", a->mnt, strerror(errno));
		return 1;
	}
	if (a->foreground)
		return serve(a, mnt, -1);
	if (pipe(p) < 0 || (pid = fork()) < 0) {
		tool_err(NULL, "cannot start the daemon: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		_exit(serve(a, mnt, p[1]));
	}
	close(p[1]);
	if (read(p[0], &c, 1) == 1)
		return 0;
	if (waitpid(pid, &st, 0) < 0)
		return 1;
	return WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : 1;
}
