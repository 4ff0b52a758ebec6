/*
 * cmd_vdisk.c - vmfsctl vdisk SUBCOMMAND: virtual disks like vmkfstools
 * (hypervisor-glue/vdisk.h does the work):
 *
 *   create -d thin|zeroedthick|eagerzeroedthick -a lsilogic|pvscsi|buslogic|ide
 *          -s SIZE DEVICE:/path.vmdk          (vmkfstools -c SIZE -d ... -a ...)
 *   clone  -i SRCDEV:/src.vmdk [-d FORMAT] DEVICE:/dst.vmdk      (vmkfstools -i)
 *   extend -X SIZE DEVICE:/path.vmdk                              (vmkfstools -X)
 *   inflate DEVICE:/path.vmdk                      (vmkfstools --inflatedisk)
 *   rm     DEVICE:/path.vmdk                                      (vmkfstools -U)
 *   info   [-D] DEVICE:/path.vmdk        (vmkfstools -D: lock mode and holders)
 *
 * A disk is named DEVICE:/path (as vmfsctl cp does) or DEVICE /path. The
 * clone source may be on another volume, also a real VMFS5/VMFS6 datastore
 * (read through the same reader as vmfsctl cp); a source path without a
 * device is on the destination volume. Every command joins the volume as a
 * host (--host NAME, default the machine's name) except info, which reads
 * without joining. Long operations show progress on a terminal (stderr).
 */
#include "fsview.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "native_util.h"
#include "vdisk.h"
#include "vmfs.h"

#define DEVLEN 4096

struct vopts {
	const char *sub;
	int prov, adapter, json, detail, quiet, have_size, have_prov;
	uint64_t size;
	const char *src, *host;
	char dev[DEVLEN];
	const char *path;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: vmfsctl vdisk SUBCOMMAND [OPTIONS] DEVICE:/PATH   (or DEVICE /PATH)\n"
	    "Virtual disks on a libvmfs volume, like vmkfstools. PATH.vmdk makes a\n"
	    "descriptor PATH.vmdk beside PATH-flat.vmdk; any other name a raw disk file.\n"
	    "Every subcommand accepts the descriptor or the flat file.\n\n"
	    "  create -s SIZE [-d FORMAT] [-a ADAPTER] DISK   create a disk\n"
	    "  clone -i SRC [-d FORMAT] [-a ADAPTER] DISK     copy SRC (DEVICE:/PATH, also on a\n"
	    "                                                 real VMFS5/6 datastore) into DISK\n"
	    "  extend -X SIZE DISK                            grow to SIZE\n"
	    "  inflate DISK                                   thin/lazy -> eagerzeroedthick\n"
	    "  rm DISK                                        remove descriptor and flat file\n"
	    "  info [-D] DISK                                 size, format, allocation; -D: lock\n"
	    "                                                 mode and holder hosts\n\n"
	    "  -d FORMAT   thin (default), zeroedthick, eagerzeroedthick\n"
	    "  -a ADAPTER  lsilogic (default), pvscsi, buslogic, ide\n"
	    "  -s, -X SIZE bytes or with K/M/G/T, a multiple of 512\n"
	    "  --host NAME host name in the volume's heartbeat (default: this machine)\n"
	    "  --json      machine-readable output\n"
	    "  -q          no progress display\n");
}

/* ---- progress ------------------------------------------------------------------------ */

struct prog {
	int quiet;
	const char *what;
	int started;
	struct tool_progress tp; /* tool.h: on a terminal only */
};

static int show_progress(void *arg, uint64_t done, uint64_t total)
{
	struct prog *p = arg;

	if (!p->started) {
		tool_progress_start(&p->tp, p->what, total, p->quiet);
		p->started = 1;
	}
	tool_progress_set(&p->tp, done);
	if (done >= total)
		tool_progress_end(&p->tp);
	return 0;
}

/* ---- mounting -------------------------------------------------------------------------- */

static int mount_dev(const struct vopts *o, const char *dev, int ro, struct vmfs **fs)
{
	struct vmfs_mount_opts mo = {.hostname = o->host, .read_only = ro};
	struct bdev *bd;
	enum tool_fmt fmt;
	int rc;

	if (tool_open(o->sub, dev, 1, &bd) < 0)
		return -1;
	fmt = tool_detect(bd);
	bdev_close(bd);
	if (fmt == TOOL_FMT_VMFS5 || fmt == TOOL_FMT_VMFS6) {
		tool_err(o->sub,
			 "%s: real VMFS datastores are read-only (clone from them with "
			 "'vmfsctl vdisk clone -i')",
			 dev);
		return -1;
	}
	if (fmt != TOOL_FMT_NATIVE) {
		tool_err(o->sub, "%s: not a libvmfs volume", dev);
		return -1;
	}
	rc = vmfs_mount(dev, &mo, fs);
	if (rc) {
		tool_err(o->sub, "%s: %s", dev,
			 vmfs_errmsg(NULL)[0] ? vmfs_errmsg(NULL) : vmfs_strerror(rc));
		return -1;
	}
	return 0;
}

static int fail(const struct vopts *o, int rc)
{
	const char *m = vdisk_errmsg();

	tool_err(o->sub, "%s: %s", o->dev, m[0] ? m : vdisk_strerror(rc));
	return TOOL_EXIT_FAIL;
}

static int done(const struct vopts *o, struct vmfs *fs, int rc, const char *what)
{
	int r = vmfs_umount(fs);

	if (!rc && r) {
		tool_err(o->sub, "%s: unmount: %s", o->dev, vmfs_strerror(r));
		return TOOL_EXIT_FAIL;
	}
	if (rc)
		return TOOL_EXIT_FAIL;
	if (o->json) {
		printf("{\"ok\": true, \"command\": \"%s\", \"disk\": ", o->sub);
		fsview_json_str(stdout, o->path);
		printf("}\n");
	} else if (what) {
		printf("%s %s\n", what, o->path);
	}
	return TOOL_EXIT_OK;
}

/* ---- subcommands ----------------------------------------------------------------------- */

static int do_create(struct vopts *o)
{
	struct prog pg = {.quiet = o->quiet, .what = "zeroing"};
	struct vdisk_create_opts co = {
	    .prov = o->prov, .adapter = o->adapter, .progress = show_progress, .progress_arg = &pg};
	struct vmfs *fs;
	int rc;

	if (!o->have_size) {
		tool_err(o->sub, "missing -s SIZE (try 'vmfsctl vdisk --help')");
		return TOOL_EXIT_USAGE;
	}
	if (mount_dev(o, o->dev, 0, &fs))
		return TOOL_EXIT_FAIL;
	rc = vdisk_create(fs, o->path, o->size, &co);
	if (rc)
		fail(o, rc);
	return done(o, fs, rc, "created");
}

static int do_extend(struct vopts *o)
{
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE};
	struct vdisk *d;
	struct vmfs *fs;
	int rc;

	if (!o->have_size) {
		tool_err(o->sub, "missing -X SIZE (try 'vmfsctl vdisk --help')");
		return TOOL_EXIT_USAGE;
	}
	if (mount_dev(o, o->dev, 0, &fs))
		return TOOL_EXIT_FAIL;
	rc = vdisk_open(fs, o->path, &oo, &d);
	if (!rc) {
		rc = vdisk_grow(d, o->size);
		vdisk_close(d);
	}
	if (rc)
		fail(o, rc);
	return done(o, fs, rc, "extended");
}

static int do_inflate(struct vopts *o)
{
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE};
	struct prog pg = {.quiet = o->quiet, .what = "inflating"};
	struct vdisk *d;
	struct vmfs *fs;
	int rc;

	if (mount_dev(o, o->dev, 0, &fs))
		return TOOL_EXIT_FAIL;
	rc = vdisk_open(fs, o->path, &oo, &d);
	if (!rc) {
		rc = vdisk_inflate(d, show_progress, &pg);
		vdisk_close(d);
	}
	if (rc)
		fail(o, rc);
	return done(o, fs, rc, "inflated");
}

static int do_rm(struct vopts *o)
{
	struct vmfs *fs;
	int rc;

	if (mount_dev(o, o->dev, 0, &fs))
		return TOOL_EXIT_FAIL;
	rc = vdisk_delete(fs, o->path);
	if (rc)
		fail(o, rc);
	return done(o, fs, rc, "removed");
}

static const char *lock_name(int m)
{
	switch (m) {
	case VMFS_LOCK_FREE: return "free";
	case VMFS_LOCK_EX: return "exclusive";
	case VMFS_LOCK_SH: return "read-only shared";
	case VMFS_LOCK_MW: return "multi-writer";
	}
	return "unknown";
}

static void info_json(const struct vdisk_info *in)
{
	printf("{\"descriptor\": ");
	if (in->has_desc)
		fsview_json_str(stdout, in->desc_path);
	else
		printf("null");
	printf(", \"flat\": ");
	fsview_json_str(stdout, in->flat_path);
	printf(", \"size\": %" PRIu64 ", \"sectors\": %" PRIu64 ", \"flat_size\": %" PRIu64
	       ", \"provisioning\": \"%s\", \"adapter\": \"%s\", \"geometry\": {\"cylinders\": "
	       "%u, \"heads\": %u, \"sectors\": %u}, \"allocated\": %" PRIu64 ", \"data\": %" PRIu64
	       ", \"tbz\": %" PRIu64 ", \"holes\": %" PRIu64 ", \"lock\": {\"mode\": \"%s\", "
	       "\"generation\": %" PRIu64 ", \"offset\": %" PRIu64 ", \"holders\": [",
	       in->size, in->size / 512, in->flat_size, vdisk_prov_name(in->prov),
	       vdisk_adapter_name(in->adapter), in->cylinders, in->heads, in->spt, in->allocated,
	       in->data, in->zero, in->hole, lock_name(in->lock_mode), in->lock_gen, in->lock_off);
	for (unsigned i = 0; i < in->nholders; i++) {
		printf("%s{\"host\": ", i ? ", " : "");
		fsview_json_str(stdout, in->holders[i].hostname);
		printf(", \"slot\": %u}", in->holders[i].slot);
	}
	printf("]}}\n");
}

static void info_text(const struct vdisk_info *in, int detail)
{
	char h[32];

	if (in->has_desc)
		printf("Disk:         %s -> %s\n", in->desc_path, in->flat_path);
	else
		printf("Disk:         %s (no descriptor)\n", in->flat_path);
	tool_human(in->size, h, sizeof(h));
	printf("Capacity:     %" PRIu64 " bytes (%s, %" PRIu64 " sectors)\n", in->size, h,
	       in->size / 512);
	printf("Format:       %s\n", vdisk_prov_name(in->prov));
	printf("Adapter:      %s (geometry %u/%u/%u)\n", vdisk_adapter_name(in->adapter),
	       in->cylinders, in->heads, in->spt);
	tool_human(in->allocated, h, sizeof(h));
	printf("Allocated:    %" PRIu64 " bytes (%s): data %" PRIu64 ", to-be-zeroed %" PRIu64
	       ", holes %" PRIu64 "\n",
	       in->allocated, h, in->data, in->zero, in->hole);
	if (in->nholders == 0) {
		printf("Lock:         free\n");
	} else {
		printf("Lock:         %s, held by", lock_name(in->lock_mode));
		for (unsigned i = 0; i < in->nholders; i++)
			printf("%s %s", i ? "," : "", in->holders[i].hostname);
		printf("\n");
	}
	if (!detail)
		return;
	printf("Lock record:  offset %" PRIu64 " (0x%" PRIx64 "), mode %d (%s), generation %" PRIu64
	       ", %u holder(s)\n",
	       in->lock_off, in->lock_off, in->lock_mode, lock_name(in->lock_mode), in->lock_gen,
	       in->nholders);
	for (unsigned i = 0; i < in->nholders; i++)
		printf("  holder %u:   host %s, heartbeat slot %u\n", i, in->holders[i].hostname,
		       in->holders[i].slot);
}

static int do_info(struct vopts *o)
{
	struct vdisk_info *in = malloc(sizeof(*in));
	struct vmfs *fs;
	int rc;

	if (!in)
		return TOOL_EXIT_FAIL;
	if (mount_dev(o, o->dev, 1, &fs)) {
		free(in);
		return TOOL_EXIT_FAIL;
	}
	rc = vdisk_info(fs, o->path, in);
	if (rc)
		fail(o, rc);
	else if (o->json)
		info_json(in);
	else
		info_text(in, o->detail);
	free(in);
	vmfs_umount(fs);
	return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

/* ---- clone ------------------------------------------------------------------------------- */

/* Clone from a real VMFS5/6 datastore: the descriptor (if the source is
 * one) and the flat file are read through the read-only reader. */
struct real_src {
	struct fsview *v;
	void *fh;
	uint64_t size;
	int adapter;
};

static int real_open(struct vopts *o, const char *dev, const char *path, struct real_src *s)
{
	char flat[4096], why[256], *text = NULL;
	struct fsview_stat st;
	uint64_t ino;
	int rc;

	if (fsview_open(o->sub, dev, 0, &s->v) < 0)
		return -1;
	s->adapter = -1;
	rc = s->v->ops->lookup(s->v, path, 1, &ino);
	if (!rc)
		rc = s->v->ops->getattr(s->v, ino, &st);
	if (!rc && !S_ISREG(st.mode))
		rc = -EISDIR;
	if (!rc && st.size <= VDISK_DESC_MAX && st.size >= 21) {
		struct vdisk_desc d;
		void *fh;
		ssize_t n = -ENOMEM;

		text = malloc(VDISK_DESC_MAX);
		rc = text ? s->v->ops->open(s->v, ino, &fh) : -ENOMEM;
		if (!rc) {
			n = s->v->ops->pread(s->v, fh, 0, text, (size_t)st.size);
			s->v->ops->release(s->v, fh);
			rc = n < 0 ? (int)n : 0;
		}
		if (!rc && vdisk_desc_sniff(text, (size_t)n)) {
			rc = vdisk_desc_parse(text, (size_t)n, &d, why, sizeof(why));
			if (rc) {
				tool_err(o->sub, "%s:%s: bad descriptor: %s", dev, path, why);
				free(text);
				return -1;
			}
			snprintf(flat, sizeof(flat), "%.*s/%s", (int)(strrchr(path, '/') - path),
				 path, d.flat);
			rc = s->v->ops->lookup(s->v, flat, 1, &ino);
			if (!rc)
				rc = s->v->ops->getattr(s->v, ino, &st);
			if (!rc && st.size < d.sectors * 512)
				rc = -EUCLEAN;
			st.size = d.sectors * 512;
			s->adapter = (int)d.adapter;
			path = flat;
		}
		free(text);
	}
	if (!rc)
		rc = s->v->ops->open(s->v, ino, &s->fh);
	if (rc) {
		tool_err(o->sub, "%s:%s: %s", dev, path, fsview_strerror(s->v, rc));
		return -1;
	}
	s->size = st.size;
	return 0;
}

static int real_copy(struct vopts *o, struct real_src *s, struct vmfs *fs)
{
	struct prog pg = {.quiet = o->quiet, .what = "cloning"};
	struct vdisk_create_opts co = {.prov = o->prov,
				       .adapter = o->adapter >= 0   ? o->adapter
						  : s->adapter >= 0 ? s->adapter
								    : VDISK_LSILOGIC};
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE};
	uint64_t size = (s->size + 511) / 512 * 512;
	struct vdisk *d;
	char *buf = malloc(1u << 20);
	int rc = buf ? vdisk_create(fs, o->path, size ? size : 512, &co) : -ENOMEM;

	if (rc)
		return fail(o, rc), rc;
	rc = vdisk_open(fs, o->path, &oo, &d);
	if (rc) {
		fail(o, rc);
		vdisk_delete(fs, o->path);
		free(buf);
		return rc;
	}
	for (uint64_t pos = 0; !rc && pos < s->size;) {
		size_t n = s->size - pos < (1u << 20) ? (size_t)(s->size - pos) : (1u << 20);
		ssize_t r = s->v->ops->pread(s->v, s->fh, pos, buf, n);

		size_t w = (n + 511) / 512 * 512; /* the last piece padded with zeroes */

		if (r >= 0 && (size_t)r < w)
			memset(buf + r, 0, w - (size_t)r);
		if (r >= 0 && !(buf[0] == 0 && !memcmp(buf, buf + 1, w - 1)))
			r = vdisk_pwrite(d, buf, w, pos);
		rc = r < 0 ? (int)r : 0;
		pos += n;
		show_progress(&pg, pos, s->size);
	}
	if (!rc && d)
		rc = vdisk_flush(d);
	if (d)
		vdisk_close(d);
	free(buf);
	if (rc) {
		tool_err(o->sub, "%s: copying: %s", o->path, vmfs_strerror(rc));
		vdisk_delete(fs, o->path);
	}
	return rc;
}

static int do_clone(struct vopts *o)
{
	struct prog pg = {.quiet = o->quiet, .what = "cloning"};
	char sdev[DEVLEN];
	const char *spath;
	struct vmfs *fs, *sfs;
	struct bdev *bd;
	enum tool_fmt fmt;
	int rc, same;

	if (!o->src) {
		tool_err(o->sub, "missing -i SOURCE (try 'vmfsctl vdisk --help')");
		return TOOL_EXIT_USAGE;
	}
	if (!fsview_split(o->src, sdev, sizeof(sdev), &spath)) {
		if (o->src[0] != '/') {
			tool_err(o->sub, "-i %s: expected DEVICE:/PATH or /PATH", o->src);
			return TOOL_EXIT_USAGE;
		}
		snprintf(sdev, sizeof(sdev), "%s", o->dev);
		spath = o->src;
	}
	same = !strcmp(sdev, o->dev);
	if (!same) {
		if (tool_open(o->sub, sdev, 1, &bd) < 0)
			return TOOL_EXIT_FAIL;
		fmt = tool_detect(bd);
		bdev_close(bd);
		if (fmt == TOOL_FMT_VMFS5 || fmt == TOOL_FMT_VMFS6) {
			struct real_src s = {0};

			if (real_open(o, sdev, spath, &s)) {
				if (s.v)
					fsview_close(s.v);
				return TOOL_EXIT_FAIL;
			}
			rc = mount_dev(o, o->dev, 0, &fs);
			if (!rc)
				rc = done(o, fs, real_copy(o, &s, fs), "cloned into");
			else
				rc = TOOL_EXIT_FAIL;
			s.v->ops->release(s.v, s.fh);
			fsview_close(s.v);
			return rc;
		}
	}
	if (mount_dev(o, o->dev, 0, &fs))
		return TOOL_EXIT_FAIL;
	sfs = fs;
	if (!same && mount_dev(o, sdev, 0, &sfs)) {
		vmfs_umount(fs);
		return TOOL_EXIT_FAIL;
	}
	{
		struct vdisk_open_opts oo = {.mode = VDISK_SHARED};
		struct vdisk_create_opts co = {.prov = o->prov,
					       .adapter = o->adapter,
					       .progress = show_progress,
					       .progress_arg = &pg};
		struct vdisk_info *in = malloc(sizeof(*in));
		struct vdisk *s;

		rc = in ? 0 : -ENOMEM;
		if (!rc && o->adapter < 0)
			co.adapter = vdisk_info(sfs, spath, in) ? VDISK_LSILOGIC : in->adapter;
		free(in);
		if (!rc)
			rc = vdisk_open(sfs, spath, &oo, &s);
		if (!rc) {
			rc = vdisk_clone(s, fs, o->path, &co);
			vdisk_close(s);
		}
		if (rc)
			tool_err(o->sub, "%s",
				 vdisk_errmsg()[0] ? vdisk_errmsg() : vmfs_strerror(rc));
	}
	if (!same)
		vmfs_umount(sfs);
	return done(o, fs, rc, "cloned into");
}

/* ---- parsing ------------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct vopts *o)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
					   {"json", no_argument, NULL, 'j'},
					   {"host", required_argument, NULL, 'H'},
					   {"diskformat", required_argument, NULL, 'd'},
					   {"adaptertype", required_argument, NULL, 'a'},
					   {NULL, 0, NULL, 0}};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hd:a:s:X:i:Dq", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return 1;
		case 'j': o->json = 1; break;
		case 'H': o->host = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'D': o->detail = 1; break;
		case 'i': o->src = optarg; break;
		case 'd':
			o->prov = vdisk_prov_parse(optarg);
			if (o->prov < 0) {
				tool_err(o->sub,
					 "bad disk format '%s' (thin, zeroedthick or "
					 "eagerzeroedthick)",
					 optarg);
				return -1;
			}
			break;
		case 'a':
			o->adapter = vdisk_adapter_parse(optarg);
			if (o->adapter < 0) {
				tool_err(o->sub,
					 "bad adapter type '%s' (lsilogic, pvscsi, buslogic "
					 "or ide)",
					 optarg);
				return -1;
			}
			break;
		case 's':
		case 'X':
			if (native_parse_size(optarg, &o->size) || !o->size || o->size % 512) {
				tool_err(o->sub,
					 "bad size '%s' (bytes or K/M/G/T, a non-zero multiple of "
					 "512)",
					 optarg);
				return -1;
			}
			o->have_size = 1;
			break;
		default:
			tool_err(o->sub, "unknown option '%s' (try 'vmfsctl vdisk --help')",
				 argv[optind - 1]);
			return -1;
		}
	}
	if (argc - optind == 1 && fsview_split(argv[optind], o->dev, sizeof(o->dev), &o->path))
		return 0;
	if (argc - optind == 2 && argv[optind + 1][0] == '/' &&
	    strlen(argv[optind]) < sizeof(o->dev)) {
		snprintf(o->dev, sizeof(o->dev), "%s", argv[optind]);
		o->path = argv[optind + 1];
		return 0;
	}
	tool_err(o->sub, "expected DEVICE:/PATH or DEVICE /PATH (try 'vmfsctl vdisk --help')");
	return -1;
}

int cmd_vdisk(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct vopts *o);
	} subs[] = {{"create", do_create},   {"clone", do_clone}, {"extend", do_extend},
		    {"inflate", do_inflate}, {"rm", do_rm},	  {"info", do_info}};
	struct vopts o = {.adapter = -1};

	if (argc < 2) {
		tool_err("vdisk",
			 "expected a subcommand: create, clone, extend, inflate, rm or info "
			 "(try 'vmfsctl vdisk --help')");
		return TOOL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char sub[32];
		int rc;

		if (strcmp(argv[1], subs[i].name))
			continue;
		snprintf(sub, sizeof(sub), "vdisk %s", subs[i].name);
		o.sub = sub;
		rc = parse_args(argc - 1, argv + 1, &o);
		if (rc)
			return rc > 0 ? TOOL_EXIT_OK : TOOL_EXIT_USAGE;
		if (o.adapter < 0 && strcmp(subs[i].name, "clone"))
			o.adapter = VDISK_LSILOGIC;
		return subs[i].fn(&o);
	}
	tool_err("vdisk", "unknown subcommand '%s' (create, clone, extend, inflate, rm, info)",
		 argv[1]);
	return TOOL_EXIT_USAGE;
}
