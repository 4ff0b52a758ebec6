/*
 * nbdkit_vmfs.c - nbdkit plugin (C plugin API version 2) serving one virtual
 * disk of a libvmfs volume over NBD:
 *
 *   nbdkit vmfs volume=URI disk=/vms/vm1/vm1.vmdk [host=NAME]
 *          [mode=exclusive|shared|multiwriter] [wait=SECONDS]
 *
 * Design note
 * -----------
 *  1. The server is one host of the volume: it mounts it (vmfs_mount with
 *     host=NAME, its own heartbeat slot) and opens the disk with the lock of
 *     `mode` for as long as it serves; every NBD connection shares that one
 *     open disk, so a flush on any connection covers the writes of all of
 *     them (multi-conn is safe).
 *  2. The heartbeat thread must live in the serving process: the mount is
 *     made in .after_fork (after nbdkit daemonises). So that a busy disk
 *     still fails at start-up, before nbdkit forks, .get_ready looks at the
 *     disk's lock through a read-only mount (no slot, no writes): when a live
 *     host holds it incompatibly and wait=0, nbdkit exits at once with
 *     "vm1.vmdk is locked by host esx1 (exclusive)". The real open in
 *     .after_fork checks again (the lock record decides, not the probe).
 *  3. wait=SECONDS (default 0) lets the open wait for the lock: a dead
 *     holder is taken over after the volume's heartbeat timeout (VM restart
 *     on another host); the mount's lock timeout is set to SECONDS.
 *  4. A host that loses its heartbeat is fenced by libvmfs: every request
 *     then fails with EIO (the guest sees I/O errors, never stale writes).
 *  5. Extents come from the flat file's block map: holes are reported as
 *     HOLE|ZERO, lazily zeroed (TBZ) blocks as ZERO, so qemu-img map and
 *     nbdcopy skip them.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk.h"
#include "vmfs.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *volume, *disk, *host;
static enum vdisk_mode mode = VDISK_EXCLUSIVE;
static unsigned wait_s;
static struct vmfs *fs;
static struct vdisk *vd;

static void vmfs_unload(void)
{
	free(volume);
	free(disk);
	free(host);
}

static int vmfs_config(const char *key, const char *value)
{
	char **dst = NULL;

	if (!strcmp(key, "volume"))
		dst = &volume;
	else if (!strcmp(key, "disk"))
		dst = &disk;
	else if (!strcmp(key, "host"))
		dst = &host;
	if (dst) {
		free(*dst);
		*dst = strdup(value);
		return *dst ? 0 : -1;
	}
	if (!strcmp(key, "mode")) {
		int m = vdisk_mode_parse(value);

		if (m < 0) {
			nbdkit_error("mode=%s: expected exclusive, shared or multiwriter", value);
			return -1;
		}
		mode = (enum vdisk_mode)m;
		return 0;
	}
	if (!strcmp(key, "wait")) {
		char *end;
		unsigned long v = strtoul(value, &end, 10);

		if (!*value || *end || v > 3600) {
			nbdkit_error("wait=%s: expected seconds in [0, 3600]", value);
			return -1;
		}
		wait_s = (unsigned)v;
		return 0;
	}
	nbdkit_error("unknown parameter '%s'", key);
	return -1;
}

static int vmfs_config_complete(void)
{
	if (!volume || !disk) {
		nbdkit_error("volume=URI and disk=PATH are required");
		return -1;
	}
	if (disk[0] != '/') {
		nbdkit_error("disk=%s: expected an absolute path in the volume", disk);
		return -1;
	}
	if (host && (!*host || strlen(host) > 63)) {
		nbdkit_error("host=%s: expected 1 to 63 characters", host);
		return -1;
	}
	return 0;
}

#define vmfs_config_help                                                                           \
	"volume=<URI>      (required) libvmfs volume: image file, block device or bdev URI\n"      \
	"disk=<PATH>       (required) disk in the volume: NAME.vmdk descriptor or flat file\n"     \
	"host=<NAME>       host name in the volume's heartbeat (default: gethostname)\n"           \
	"mode=<MODE>       exclusive (default), shared (read-only) or multiwriter\n"               \
	"wait=<SECONDS>    wait for a busy lock (dead holders are taken over); default 0"

/* Compatible with the holders' mode? */
static int compatible(int held)
{
	if (held == VMFS_LOCK_FREE)
		return 1;
	if (held == VMFS_LOCK_SH)
		return mode == VDISK_SHARED;
	if (held == VMFS_LOCK_MW)
		return mode == VDISK_MULTIWRITER;
	return 0;
}

/* The start-up probe of note 2 (read-only mount). */
static int vmfs_get_ready(void)
{
	struct vmfs_mount_opts mo = {.hostname = host, .read_only = 1};
	struct vmfs *ro;
	struct vdisk_info *in;
	int rc = vmfs_mount(volume, &mo, &ro);

	if (rc) {
		nbdkit_error("%s: %s", volume,
			     vmfs_errmsg(NULL)[0] ? vmfs_errmsg(NULL) : vmfs_strerror(rc));
		return -1;
	}
	in = malloc(sizeof(*in));
	rc = in ? vdisk_info(ro, disk, in) : -ENOMEM;
	if (rc) {
		nbdkit_error("%s", vdisk_errmsg()[0] ? vdisk_errmsg() : vmfs_strerror(rc));
	} else if (!wait_s && in->nholders && !compatible(in->lock_mode)) {
		char hosts[256] = "";
		size_t n = 0;

		for (unsigned i = 0; i < in->nholders && n + 70 < sizeof(hosts); i++)
			n += (size_t)snprintf(hosts + n, sizeof(hosts) - n, "%s%s", i ? ", " : "",
					      in->holders[i].hostname);
		nbdkit_error("%s is locked by host%s %s (%s)", strrchr(disk, '/') + 1,
			     in->nholders > 1 ? "s" : "", hosts,
			     in->lock_mode == VMFS_LOCK_EX   ? "exclusive"
			     : in->lock_mode == VMFS_LOCK_SH ? "read-only shared"
							     : "multi-writer");
		rc = -EBUSY;
	}
	free(in);
	vmfs_umount(ro);
	return rc ? -1 : 0;
}

static int vmfs_after_fork(void)
{
	struct vmfs_mount_opts mo = {.hostname = host, .lock_timeout_ms = wait_s * 1000u};
	struct vdisk_open_opts oo = {.mode = mode, .wait = wait_s > 0};
	int rc = vmfs_mount(volume, &mo, &fs);

	if (rc) {
		nbdkit_error("%s: %s", volume,
			     vmfs_errmsg(NULL)[0] ? vmfs_errmsg(NULL) : vmfs_strerror(rc));
		return -1;
	}
	rc = vdisk_open(fs, disk, &oo, &vd);
	if (rc) {
		nbdkit_error("%s", vdisk_errmsg()[0] ? vdisk_errmsg() : vmfs_strerror(rc));
		vmfs_umount(fs);
		fs = NULL;
		return -1;
	}
	nbdkit_debug("vmfs: serving %s (%" PRIu64 " bytes, %s, %s)", disk, vdisk_size(vd),
		     vdisk_mode_name(mode), vdisk_prov_name(vdisk_prov(vd)));
	return 0;
}

static void vmfs_cleanup(void)
{
	if (vd)
		vdisk_close(vd);
	if (fs)
		vmfs_umount(fs);
	vd = NULL;
	fs = NULL;
}

static void *vmfs_open_conn(int readonly)
{
	(void)readonly;
	return vd;
}

static int64_t vmfs_get_size(void *h)
{
	return (int64_t)vdisk_size(h);
}

static int vmfs_can_write(void *h)
{
	return vdisk_mode(h) != VDISK_SHARED;
}

static int vmfs_yes(void *h)
{
	(void)h;
	return 1;
}

static int vmfs_can_fua(void *h)
{
	(void)h;
	return NBDKIT_FUA_NATIVE;
}

/* Reports err (negative) to nbdkit: private libvmfs codes become EIO. */
static int fail(const char *what, int err)
{
	int e = -err;

	nbdkit_error("%s: %s", what, vmfs_strerror(err));
	if (e <= 0 || e >= 1000)
		e = EIO;
	nbdkit_set_error(e);
	return -1;
}

static int fua(void *h, uint32_t flags)
{
	int rc = (flags & NBDKIT_FLAG_FUA) ? vdisk_flush(h) : 0;

	return rc ? fail("flush", rc) : 0;
}

static int vmfs_pread(void *h, void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	ssize_t n = vdisk_pread(h, buf, count, off);

	(void)flags;
	return n < 0 ? fail("read", (int)n) : 0;
}

static int vmfs_pwrite(void *h, const void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	ssize_t n = vdisk_pwrite(h, buf, count, off);

	return n < 0 ? fail("write", (int)n) : fua(h, flags);
}

static int vmfs_flush(void *h, uint32_t flags)
{
	int rc = vdisk_flush(h);

	(void)flags;
	return rc ? fail("flush", rc) : 0;
}

static int vmfs_trim(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	int rc = vdisk_discard(h, off, count);

	return rc ? fail("trim", rc) : fua(h, flags);
}

static int vmfs_zero(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	unsigned zf = ((flags & NBDKIT_FLAG_MAY_TRIM) ? VDISK_ZERO_MAY_TRIM : 0) |
		      ((flags & NBDKIT_FLAG_FAST_ZERO) ? VDISK_ZERO_FAST : 0);
	int rc = vdisk_write_zeroes(h, off, count, zf);

	if (rc == -ENOTSUP) {
		nbdkit_set_error(ENOTSUP); /* fast zero refused: not an error to log */
		return -1;
	}
	return rc ? fail("zero", rc) : fua(h, flags);
}

static int vmfs_extents(void *h, uint32_t count, uint64_t off, uint32_t flags,
			struct nbdkit_extents *out)
{
	struct vmfs_extent ext[256];
	int n = vdisk_extents(h, off, count, ext, (flags & NBDKIT_FLAG_REQ_ONE) ? 1 : 256);

	if (n < 0)
		return fail("extents", n);
	for (int i = 0; i < n; i++) {
		uint32_t t = 0;

		if (ext[i].flags & VMFS_EXT_HOLE)
			t |= NBDKIT_EXTENT_HOLE;
		if (ext[i].flags & VMFS_EXT_ZERO)
			t |= NBDKIT_EXTENT_ZERO;
		if (nbdkit_add_extent(out, ext[i].off, ext[i].len, t) < 0)
			return -1;
	}
	return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "vmfs",
    .longname = "libvmfs virtual disk plugin",
    .version = "0.1.0",
    .description = "Serves a virtual disk of a shared libvmfs volume with VMFS lock semantics",
    .unload = vmfs_unload,
    .config = vmfs_config,
    .config_complete = vmfs_config_complete,
    .config_help = vmfs_config_help,
    .magic_config_key = "disk",
    .get_ready = vmfs_get_ready,
    .after_fork = vmfs_after_fork,
    .cleanup = vmfs_cleanup,
    .open = vmfs_open_conn,
    .get_size = vmfs_get_size,
    .can_write = vmfs_can_write,
    .can_flush = vmfs_yes,
    .can_trim = vmfs_can_write,
    .can_zero = vmfs_can_write,
    .can_fast_zero = vmfs_yes,
    .can_extents = vmfs_yes,
    .can_multi_conn = vmfs_yes,
    .can_fua = vmfs_can_fua,
    .pread = vmfs_pread,
    .pwrite = vmfs_pwrite,
    .flush = vmfs_flush,
    .trim = vmfs_trim,
    .zero = vmfs_zero,
    .extents = vmfs_extents,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
