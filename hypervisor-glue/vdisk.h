/*
 * vdisk.h - virtual disks on a libvmfs volume, for hypervisors (prefix
 * vdisk_): the layer a hypervisor links against (the nbdkit plugin, vmfsctl
 * vdisk). Built only on the public libvmfs API (vmfs.h). docs/GLUE.md shows
 * an admin how to use it; the design note is at the top of vdisk.c.
 *
 * A virtual disk is either
 *  - a VMDK pair like vmkfstools makes: NAME.vmdk, a small text descriptor
 *    (createType "vmfs", one extent line `RW <sectors> VMFS "NAME-flat.vmdk"`,
 *    ddb geometry and adapter type), beside NAME-flat.vmdk, the raw data; or
 *  - any regular file (a flat file or a raw image) used as the disk itself.
 * Every function that takes a path accepts either the descriptor or the
 * flat/raw file.
 *
 * VMware semantics: opening a disk takes the flat file's lock: exclusive
 * (one host reads and writes: a running VM), read-only shared (any number
 * of hosts read), multi-writer (clustered guests: several hosts write in
 * place; allocation and size changes need the lock alone, so a multi-writer
 * disk should be thick). A lock held incompatibly by another host makes the
 * open fail with -EBUSY and vdisk_errmsg() naming the holder:
 * "vm1.vmdk is locked by host esx1 (exclusive)".
 *
 * Conventions: opaque handles; 0 (or a count) or a negative errno; the
 * private codes of libvmfs pass through (vdisk_strerror() names every one).
 * After an error, vdisk_errmsg() (per thread) says what was wrong in one
 * line. A struct vdisk may be used by several threads at once.
 */
#ifndef HYPERVISOR_GLUE_VDISK_H
#define HYPERVISOR_GLUE_VDISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vmfs;
struct vdisk;

/* Provisioning (vmkfstools -d). */
enum vdisk_prov {
	VDISK_THIN = 0,		    /* blocks come with the first write */
	VDISK_ZEROEDTHICK = 1,	    /* all blocks allocated, zeroed lazily (TBZ) */
	VDISK_EAGERZEROEDTHICK = 2, /* all blocks allocated and zeroed on disk */
};
/* Adapter type (ddb.adapterType; decides the geometry). */
enum vdisk_adapter {
	VDISK_LSILOGIC = 0,
	VDISK_PVSCSI = 1,
	VDISK_BUSLOGIC = 2,
	VDISK_IDE = 3,
};
/* Open modes: the lock taken on the flat file. */
enum vdisk_mode {
	VDISK_EXCLUSIVE = 0,   /* read-write, lock exclusive */
	VDISK_SHARED = 1,      /* read-only, lock shared with other readers */
	VDISK_MULTIWRITER = 2, /* read-write, lock shared with other multi-writers */
};

/* Called during long operations (eager zeroing, clone, inflate) with the
 * bytes done and the total; a non-zero return cancels (-ECANCELED). */
typedef int (*vdisk_progress_cb)(void *arg, uint64_t done, uint64_t total);

/* Names: "thin", "zeroedthick", "eagerzeroedthick" / "lsilogic", "pvscsi",
 * "buslogic", "ide" / "exclusive", "shared", "multiwriter". Parsers return
 * the value or -EINVAL. */
const char *vdisk_prov_name(enum vdisk_prov p);
const char *vdisk_adapter_name(enum vdisk_adapter a);
const char *vdisk_mode_name(enum vdisk_mode m);
int vdisk_prov_parse(const char *s);
int vdisk_adapter_parse(const char *s);
int vdisk_mode_parse(const char *s);

/* ---- descriptors ------------------------------------------------------------ */

#define VDISK_DESC_MAX	  65536u /* larger files are never descriptors */
#define VDISK_NAME_MAX	  255u
#define VDISK_EXTRA_MAX	  4096u
#define VDISK_SECTOR	  512u
#define VDISK_SIZE_MAX	  (62ull << 40) /* vmkfstools' largest VMDK: 62 TiB */
#define VDISK_FLAT_SUFFIX "-flat.vmdk"

struct vdisk_desc {
	char create_type[32];
	char flat[VDISK_NAME_MAX + 1]; /* extent file name, in the descriptor's directory */
	int rdonly;		       /* extent access RDONLY */
	uint64_t sectors;	       /* extent size in 512-byte sectors */
	uint32_t cid, parent_cid;
	enum vdisk_adapter adapter;
	uint32_t cylinders, heads, spt; /* ddb.geometry */
	int thin;			/* ddb.thinProvisioned = "1" */
	char uuid[64];			/* ddb.uuid, kept as text */
	char extra[VDISK_EXTRA_MAX];	/* other ddb lines, kept verbatim (validated) */
};

/* Fills d for a new disk of `size` bytes (a multiple of 512) whose flat file
 * is named `flat`: random CID and UUID, geometry from the adapter. */
int vdisk_desc_init(struct vdisk_desc *d, const char *flat, uint64_t size,
		    enum vdisk_adapter adapter, int thin);
/* Geometry for a size and adapter (what vmkfstools writes). */
void vdisk_geometry(uint64_t sectors, enum vdisk_adapter a, uint32_t *cyl, uint32_t *heads,
		    uint32_t *spt);
/* Parses and validates descriptor text (not NUL-terminated; len bytes).
 * Errors: -EINVAL with the reason in why ("line 7: ..."), -ENOTSUP for
 * valid descriptors of kinds not supported here (sparse/snapshot, RDM,
 * several extents). */
int vdisk_desc_parse(const char *text, size_t len, struct vdisk_desc *d, char *why, size_t whylen);
/* Writes the descriptor text; returns its length, or -ENOSPC if len is too
 * small. */
int vdisk_desc_format(const struct vdisk_desc *d, char *buf, size_t len);
/* 1 when the bytes start like a descriptor ("# Disk DescriptorFile"). */
int vdisk_desc_sniff(const void *buf, size_t len);

/* ---- disks by path ------------------------------------------------------------- */

struct vdisk_create_opts {
	enum vdisk_prov prov;
	enum vdisk_adapter adapter;
	uint32_t mode; /* permission bits; 0: 0600 */
	vdisk_progress_cb progress;
	void *progress_arg;
};

/* Creates a disk of `size` bytes (a multiple of 512, at most
 * VDISK_SIZE_MAX). A path ending in ".vmdk" (not "-flat.vmdk") makes the
 * pair NAME.vmdk + NAME-flat.vmdk; any other path makes a raw disk file.
 * Eagerly zeroed disks are zeroed in steps with progress. On failure nothing
 * is left behind. Errors: -EINVAL (size), -EEXIST, -ENOSPC, those of
 * vmfs_open()/vmfs_create_thick(), -ECANCELED. */
int vdisk_create(struct vmfs *fs, const char *path, uint64_t size,
		 const struct vdisk_create_opts *o);
/* Removes a disk: its descriptor and flat file (or the raw file). -EBUSY
 * naming the holder when another host has it open. */
int vdisk_delete(struct vmfs *fs, const char *path);

struct vdisk_info {
	int has_desc;
	char desc_path[4096], flat_path[4096];
	struct vdisk_desc desc;	   /* has_desc only */
	uint64_t size;		   /* guest-visible bytes */
	uint64_t flat_size;	   /* bytes of the flat file */
	uint64_t allocated;	   /* bytes allocated to the flat file (st_blocks * 512) */
	uint64_t data, zero, hole; /* bytes of the disk by extent kind (data, TBZ, holes) */
	enum vdisk_prov prov;	   /* from the extents: holes -> thin, TBZ -> zeroedthick */
	enum vdisk_adapter adapter;
	uint32_t cylinders, heads, spt;
	/* The flat file's lock (vmfs_lock_query()). */
	int lock_mode; /* VMFS_LOCK_* */
	uint64_t lock_gen, lock_off;
	unsigned nholders;
	struct {
		char hostname[64];
		uint32_t slot;
		int self;
	} holders[48];
};
/* Describes a disk without opening it (no lock taken: works while a VM runs
 * elsewhere). Errors: those of lookups, -EINVAL (bad descriptor, reason in
 * vdisk_errmsg()). */
int vdisk_info(struct vmfs *fs, const char *path, struct vdisk_info *out);

/* ---- open disks --------------------------------------------------------------- */

struct vdisk_open_opts {
	enum vdisk_mode mode;
	/* 0: fail at once when the lock is busy (-EBUSY naming the holder);
	 * otherwise wait up to the mount's lock timeout: a dead holder is taken
	 * over after the heartbeat timeout (VM restart on another host). */
	int wait;
	unsigned queue_depth; /* worker threads for vdisk_submit(); 0: 8, max 64 */
};

/* Opens a disk (descriptor or flat/raw file). Errors: -EBUSY (locked by
 * another host, named in vdisk_errmsg()), -EINVAL (bad descriptor),
 * -ENOTSUP (unsupported descriptor kind), -EUCLEAN (flat file smaller than
 * the descriptor says), those of vmfs_open(). */
int vdisk_open(struct vmfs *fs, const char *path, const struct vdisk_open_opts *o,
	       struct vdisk **out);
/* Waits for queued requests, releases the lock, frees d. */
int vdisk_close(struct vdisk *d);

uint64_t vdisk_size(const struct vdisk *d);
enum vdisk_mode vdisk_mode(const struct vdisk *d);
/* The provisioning seen at open (from the extents); thick disks keep their
 * blocks on discard. */
enum vdisk_prov vdisk_prov(const struct vdisk *d);

/* Synchronous I/O. Ranges must lie inside the disk (-EINVAL). Reads of
 * holes return zeroes. Writes: -EBADF on a shared (read-only) open. */
ssize_t vdisk_pread(struct vdisk *d, void *buf, size_t len, uint64_t off);
ssize_t vdisk_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off);
int vdisk_flush(struct vdisk *d);
/* Discard (guest TRIM/UNMAP): on a thin disk opened exclusively, frees the
 * whole file blocks of the range on the volume and passes them down to the
 * device; parts of blocks are zeroed. On thick disks (their space stays
 * reserved, as on ESXi) and multi-writer/shared opens it does nothing and
 * returns 0 (a discard is advisory). */
int vdisk_discard(struct vdisk *d, uint64_t off, uint64_t len);
#define VDISK_ZERO_MAY_TRIM 0x1u /* the range may become a hole (thin disks) */
#define VDISK_ZERO_FAST	    0x2u /* fail with -ENOTSUP rather than write zeroes */
/* Makes the range read as zeroes: holes (may trim, thin) or to-be-zeroed
 * blocks (no data written), zeroes written only at unaligned ends. */
int vdisk_write_zeroes(struct vdisk *d, uint64_t off, uint64_t len, unsigned flags);

/* Extents of [off, off + len) (see vmfs_file_extents(); flags VMFS_EXT_*).
 * Returns the count. */
struct vmfs_extent;
int vdisk_extents(struct vdisk *d, uint64_t off, uint64_t len, struct vmfs_extent *ext,
		  unsigned max);

/* Grows the disk to new_size (exclusive opens): the flat file grows with the
 * disk's provisioning and the descriptor's extent and geometry follow.
 * -EINVAL (smaller, or not a multiple of 512), -EBADF (not exclusive). */
int vdisk_grow(struct vdisk *d, uint64_t new_size);
/* Thin or lazily zeroed to eagerly zeroed thick (vmkfstools --inflatedisk /
 * --eagerzero): every hole gets a zeroed block and every TBZ block is
 * zeroed on disk, with progress. -EBADF (not exclusive). */
int vdisk_inflate(struct vdisk *d, vdisk_progress_cb progress, void *arg);
/* Copies an open disk into a new disk at dst of the same size, created
 * with o's provisioning and adapter, with progress. Holes and all-zero runs
 * of the source are not written: they stay holes (thin) or TBZ blocks
 * (zeroedthick). Errors: those of vdisk_create() and of the I/O; the new
 * disk is removed on failure. */
int vdisk_clone(struct vdisk *src, struct vmfs *dstfs, const char *dst,
		const struct vdisk_create_opts *o);

/* ---- asynchronous I/O ------------------------------------------------------------
 * Requests run on the disk's worker threads (queue_depth of them), in any
 * order; a flush completes after every write that completed before it was
 * submitted. done() is called once from a worker thread with the result
 * (bytes for reads/writes, 0, or -errno). */
enum vdisk_op {
	VDISK_OP_READ = 0,
	VDISK_OP_WRITE = 1,
	VDISK_OP_FLUSH = 2,
	VDISK_OP_DISCARD = 3,
	VDISK_OP_WRITE_ZEROES = 4,
};
struct vdisk_req {
	enum vdisk_op op;
	void *buf; /* READ / WRITE */
	uint64_t off, len;
	unsigned flags; /* WRITE_ZEROES: VDISK_ZERO_* */
	void (*done)(struct vdisk_req *r, ssize_t result);
	void *arg;
	struct vdisk_req *next_; /* private */
};
/* Queues r. Errors: -EINVAL (bad op), -ESHUTDOWN (closing). */
int vdisk_submit(struct vdisk *d, struct vdisk_req *r);
/* Waits until every submitted request has completed. */
void vdisk_drain(struct vdisk *d);

/* ---- errors --------------------------------------------------------------------- */

/* The detail of this thread's last vdisk error ("" if none). */
const char *vdisk_errmsg(void);
const char *vdisk_strerror(int err);

#endif
