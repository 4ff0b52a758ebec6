/*
 * vdisk_int.h - private to hypervisor-glue/vdisk*.c: the open disk, path
 * resolution (descriptor -> flat file) and error helpers.
 */
#ifndef HYPERVISOR_GLUE_VDISK_INT_H
#define HYPERVISOR_GLUE_VDISK_INT_H

#include <pthread.h>

#include "vdisk.h"
#include "vmfs.h"

#define VDISK_PATH_MAX 4096u
/* Extended attribute on the flat file recording its provisioning. */
#define VDISK_XATTR_PROV "user.vdisk.provisioning"

/* A disk named by a path: the descriptor (if any) and the flat file. */
struct vpath {
	int has_desc;
	char desc_path[VDISK_PATH_MAX];
	char flat_path[VDISK_PATH_MAX];
	char name[VDISK_NAME_MAX + 1]; /* last component of the path given, for messages */
	struct vdisk_desc desc;
};

struct vdisk {
	struct vmfs *fs;
	struct vmfs_file *f;
	enum vdisk_mode mode;
	enum vdisk_prov prov;
	uint64_t size;
	struct vpath vp;
	/* asynchronous requests */
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	struct vdisk_req *head, *tail;
	unsigned pending; /* queued + running */
	int stop;
	unsigned qd, nworkers;
	pthread_t *workers;
};

/* Sets this thread's vdisk_errmsg() (printf-style); returns rc. */
int vd_err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Resolves path: a descriptor is read, validated and its flat file named. */
int vd_resolve(struct vmfs *fs, const char *path, struct vpath *vp);
/* -EBUSY with "NAME is locked by host H (mode)" for the lock of lockpath. */
int vd_busy(struct vmfs *fs, const char *lockpath, const char *name);
/* Writes the descriptor file of vp (new, or replacing the old one
 * atomically by rename). */
int vd_write_desc(struct vmfs *fs, const char *path, const struct vdisk_desc *d, int replace);
/* Provisioning recorded on the flat file (xattr), or -ENODATA. */
int vd_prov_get(struct vmfs *fs, const char *flat);
int vd_prov_set(struct vmfs *fs, const char *flat, enum vdisk_prov p);

#endif
