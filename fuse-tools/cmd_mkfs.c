/*
 * cmd_mkfs.c - vmfsctl mkfs: formats a device with the native format
 * (libvmfs/format.h). Refuses to overwrite anything that looks used (our
 * format, a real VMFS, a known signature, or any non-zero data: every
 * allocated extent of an image file is read; on other devices everything
 * mkfs writes is read and the data area sampled) unless --force. Shows
 * progress on a terminal (one line redrawn in place; nothing in logs) and
 * prints the resulting layout.
 */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "format.h"
#include "le.h"
#include "native_util.h"

#define NSAMPLES 256

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmfsctl mkfs [-L label] [-b blocksize] [-H maxhosts] [-J journalsize]\n"
		"                    [--hb-interval MS] [--hb-timeout MS] [--locks N] [-N files]\n"
		"                    [-n|--dry-run] [-f|--force] [-q] DEVICE\n"
		"Format DEVICE as a libvmfs volume. Sizes take K/M/G suffixes.\n"
		"  -L label          volume label (up to 63 bytes)\n"
		"  -b blocksize      file block size, a power of two 64K..64M (default 1M)\n"
		"  -H maxhosts       heartbeat slots and journals, 1..2048 (default 64)\n"
		"  -J journalsize    journal per host, 256K..1G (default 4M)\n"
		"  --hb-interval MS  heartbeat interval, 100..60000 ms (default 1000)\n"
		"  --hb-timeout MS   a host is dead after MS ms, >= 4 intervals (default 8000)\n"
		"  --locks N         named lock units for 'vmfsctl lock', 1..65536 (default 256)\n"
		"  -N files          file descriptors (files + directories), 1..16777216, rounded\n"
		"                    up to 256 (default 256 per 256 MiB of device, up to 262144)\n"
		"  -n, --dry-run     print the layout, write nothing\n"
		"  -f, --force       format even if the device holds data or a file system\n"
		"  -q                quiet: no layout summary, no progress\n");
}

struct prog {
	int tty;
	char phase[48];
	int last;
};

struct mkfs_args {
	struct vmfs_mkfs_opts o;
	int dry, force, quiet;
	const char *dev;
	struct prog prog;
};

static int bad_arg(const char *fmt, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, what);
	tool_err("mkfs", "%s (try 'vmfsctl mkfs --help')", msg);
	return TOOL_EXIT_USAGE;
}

static int parse_opt(int c, const char *arg, struct mkfs_args *a)
{
	uint64_t v;

	switch (c) {
	case 'L': a->o.label = arg; return 0;
	case 'n': a->dry = 1; return 0;
	case 'f': a->force = 1; return 0;
	case 'q': a->quiet = 1; return 0;
	case 'b':
		if (native_parse_size(arg, &v) || v > UINT32_MAX || v == 0)
			return bad_arg("bad block size '%s'", arg);
		a->o.block_size = (uint32_t)v;
		return 0;
	case 'J':
		if (native_parse_size(arg, &v) || v == 0)
			return bad_arg("bad journal size '%s'", arg);
		a->o.journal_size = v;
		return 0;
	case 'H':
		return native_parse_u32(arg, 1, UINT32_MAX, &a->o.max_hosts)
			   ? bad_arg("bad host count '%s'", arg)
			   : 0;
	case 1:
		return native_parse_u32(arg, 1, UINT32_MAX, &a->o.hb_interval_ms)
			   ? bad_arg("bad heartbeat interval '%s'", arg)
			   : 0;
	case 2:
		return native_parse_u32(arg, 1, UINT32_MAX, &a->o.hb_timeout_ms)
			   ? bad_arg("bad heartbeat timeout '%s'", arg)
			   : 0;
	case 'N':
		return native_parse_u32(arg, 1, 1u << 24, &a->o.nfds)
			   ? bad_arg("bad file count '%s'", arg)
			   : 0;
	case 3:
		return native_parse_u32(arg, 1, UINT32_MAX, &a->o.nlocks)
			   ? bad_arg("bad lock count '%s'", arg)
			   : 0;
	default: return TOOL_EXIT_USAGE;
	}
}

/* Returns -1 to go on, else an exit code. */
static int parse(int argc, char **argv, struct mkfs_args *a)
{
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'},		{"dry-run", no_argument, NULL, 'n'},
	    {"force", no_argument, NULL, 'f'},		{"hb-interval", required_argument, NULL, 1},
	    {"hb-timeout", required_argument, NULL, 2}, {"locks", required_argument, NULL, 3},
	    {"label", required_argument, NULL, 'L'},	{NULL, 0, NULL, 0}};
	int c, rc;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":L:b:H:J:N:nfqh", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return TOOL_EXIT_OK;
		}
		if (c == '?')
			return bad_arg("unknown option '%s'", argv[optind - 1]);
		if (c == ':')
			return bad_arg("option '%s' needs a value", argv[optind - 1]);
		rc = parse_opt(c, optarg, a);
		if (rc)
			return rc;
	}
	if (optind != argc - 1)
		return bad_arg("%s",
			       optind >= argc ? "no DEVICE given" : "more than one DEVICE given");
	a->dev = argv[optind];
	return -1;
}

/* ---- what is on the device already ---------------------------------------- */

static const char *signature(const uint8_t *b, uint32_t lsec)
{
	if (le16_get(b + 0x438) == 0xEF53)
		return "an ext2/3/4 file system";
	if (!memcmp(b, "XFSB", 4))
		return "an XFS file system";
	if (!memcmp(b + lsec, "EFI PART", 8))
		return "a GPT partition table";
	if (!memcmp(b + 512, "LABELONE", 8))
		return "an LVM physical volume";
	if (!memcmp(b + 0x10040, "_BHRfS_M", 8))
		return "a btrfs file system";
	if (!memcmp(b + 4086, "SWAPSPACE2", 10) || !memcmp(b + 4086, "SWAP-SPACE", 10))
		return "a swap area";
	if (!memcmp(b + 0x8001, "CD001", 5))
		return "an ISO 9660 file system";
	if (b[510] == 0x55 && b[511] == 0xAA)
		return "a partition table or boot sector (MBR)";
	return NULL;
}

/* Image files: the path of a regular file behind the URI, else NULL. */
static const char *image_path(const char *dev)
{
	struct stat st;

	if (!strncmp(dev, "file:", 5))
		dev += 5;
	if (getenv("BDEV_WRAP") || strchr(dev, '?') || stat(dev, &st) || !S_ISREG(st.st_mode))
		return NULL;
	return dev;
}

/* First non-zero byte of [off, off + len) into *at (UINT64_MAX: none). */
static int scan(struct bdev *bd, uint8_t *b, size_t blen, uint64_t off, uint64_t len, uint64_t *at)
{
	int rc = 0;

	*at = UINT64_MAX;
	off = off / bd->lsec * bd->lsec;
	while (len && !rc && *at == UINT64_MAX) {
		size_t n = len < blen ? (size_t)len : blen;

		n = (n + bd->lsec - 1) / bd->lsec * bd->lsec;
		if (off + n > bd->size)
			n = (size_t)(bd->size - off);
		if (!n)
			break;
		rc = bdev_read(bd, b, off, n);
		for (size_t i = 0; !rc && i < n; i++)
			if (b[i]) {
				*at = off + i;
				break;
			}
		off += n;
		len = len > n ? len - n : 0;
	}
	return rc;
}

/* Every allocated extent of an image file (SEEK_DATA / SEEK_HOLE): exact,
 * and instant on a fresh sparse image. */
static int scan_extents(struct bdev *bd, const char *path, uint8_t *b, size_t blen, uint64_t *at)
{
	int fd = open(path, O_RDONLY), rc = 0;
	off_t d = 0, h;

	*at = UINT64_MAX;
	if (fd < 0)
		return -errno;
	while (!rc && *at == UINT64_MAX && (uint64_t)d < bd->size) {
		d = lseek(fd, d, SEEK_DATA);
		if (d < 0)
			break; /* ENXIO: no data beyond */
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = (off_t)bd->size;
		rc = scan(bd, b, blen, (uint64_t)d, (uint64_t)(h - d), at);
		d = h;
	}
	close(fd);
	return rc;
}

/* Fills *what with a description of what the device holds, or NULL, and
 * *at with the offset of the first non-zero byte found (UINT64_MAX: none
 * or not known). An image file is read wherever it has data; another
 * device is read in full where mkfs writes (everything below the data
 * area, and the backup header) and sampled over the data area. */
static int inspect(struct bdev *bd, const char *dev, const struct vmfs_vh *vh, const char **what,
		   uint64_t *at)
{
	const size_t head = 1u << 20;
	uint8_t *b = bdev_alloc(head);
	enum tool_fmt fmt = tool_detect(bd);
	const char *img = image_path(dev);
	int rc = 0;

	*what = NULL;
	*at = UINT64_MAX;
	if (!b)
		return -ENOMEM;
	if (fmt == TOOL_FMT_NATIVE)
		*what = "a libvmfs volume";
	else if (fmt == TOOL_FMT_VMFS5 || fmt == TOOL_FMT_VMFS6)
		*what = fmt == TOOL_FMT_VMFS6 ? "a VMFS6 datastore" : "a VMFS5 datastore";
	if (!*what && bd->size >= head) {
		rc = bdev_read(bd, b, 0, head);
		if (rc == 0)
			*what = signature(b, bd->lsec);
	}
	if (!*what && !rc && img) {
		rc = scan_extents(bd, img, b, head, at);
	} else if (!*what && !rc) {
		rc = scan(bd, b, head, 0, vh->data_off, at);
		if (!rc && *at == UINT64_MAX)
			rc = scan(bd, b, head, vh->backup_off, bd->size - vh->backup_off, at);
		for (unsigned i = 0; i <= NSAMPLES && rc == 0 && *at == UINT64_MAX; i++) {
			uint64_t off = vh->data_off + (bd->size - vh->data_off) / NSAMPLES * i;

			rc = scan(bd, b, head, off, 4096, at);
		}
	}
	if (!*what && *at != UINT64_MAX)
		*what = "non-zero data";
	bdev_free(b);
	return rc;
}

/* ---- progress ---------------------------------------------------------------- */

/* One line on a terminal, redrawn in place through the phases; nothing
 * when stderr is not a terminal (logs stay clean). */
static void show_progress(void *arg, const char *phase, unsigned pct)
{
	struct prog *p = arg;

	if (strcmp(p->phase, phase)) {
		snprintf(p->phase, sizeof(p->phase), "%s", phase);
		p->last = -1;
	}
	if ((int)pct == p->last)
		return;
	p->last = (int)pct;
	fprintf(stderr, "\rmkfs: %s %3u%%\033[K", phase, pct);
	fflush(stderr);
}

/* A LUN with persistent reservations (docs/LOCKING.md, "Fencing on SAN
 * LUNs") may carry the registrations and the write-exclusive reservation of
 * the hosts of a volume that was there: an unregistered session such as
 * mkfs's cannot write under it. Without --force that is refused (hosts may
 * still use the LUN); with it, mkfs registers a key of its own and CLEARs
 * every registration and the reservation. *have is set when some exist. */
static int check_reservations(struct mkfs_args *a, struct bdev *bd, int *have)
{
	uint64_t keys[4], holder, tmp;
	unsigned n = 0, own = bd->ats_method == BDEV_ATS_PR; /* the mutex method's key */
	int held = 0, rc;
	uint32_t gen;
	enum bdev_pr_type type;

	*have = 0;
	if (!(bd->caps & BDEV_CAP_PR) || (bd->caps & BDEV_CAP_READONLY))
		return 0;
	rc = bdev_pr_read_keys(bd, keys, 4, &n, &gen);
	if (rc == 0)
		rc = bdev_pr_read_reservation(bd, &held, &holder, &type);
	if (rc < 0) {
		tool_err("mkfs", "%s: reading the persistent reservations: %s", a->dev,
			 bdev_strerror(rc));
		return rc;
	}
	if (n <= own && !held)
		return 0;
	*have = 1;
	if (!a->force) {
		tool_err("mkfs",
			 "%s: the LUN carries %u other registration(s)%s: hosts may still use it; "
			 "use --force to clear them and format",
			 a->dev, n - own, held ? " and a persistent reservation" : "");
		return -EBUSY;
	}
	if (a->dry)
		return 0;
	tmp = ((uint64_t)getpid() << 20) ^ (uint64_t)time(NULL) ^ 0x4d4b4653ull; /* "MKFS" */
	rc = bdev_pr_register(bd, tmp | 1);
	if (rc == 0)
		rc = bdev_pr_clear(bd, tmp | 1);
	if (rc < 0)
		tool_err("mkfs", "%s: clearing the persistent reservations: %s", a->dev,
			 bdev_strerror(rc));
	return rc;
}

static int do_mkfs(struct mkfs_args *a, struct bdev *bd)
{
	struct vmfs_vh vh;
	struct prog *prog = &a->prog;
	const char *what = NULL;
	char why[256], where[64] = "";
	uint64_t at;
	int rc;

	prog->tty = isatty(2);
	rc = vmfs_layout(bd->size, bd->lsec, &a->o, &vh, why, sizeof(why));
	if (rc == -EINVAL) {
		tool_err("mkfs", "%s", why);
		return TOOL_EXIT_USAGE;
	}
	if (rc) {
		tool_err("mkfs", "%s: %s", a->dev, why);
		return TOOL_EXIT_FAIL;
	}
	rc = inspect(bd, a->dev, &vh, &what, &at);
	if (rc) {
		tool_err("mkfs", "%s: cannot read the device: %s", a->dev, bdev_strerror(rc));
		return TOOL_EXIT_FAIL;
	}
	if (at != UINT64_MAX)
		snprintf(where, sizeof(where), " at byte %" PRIu64 " (%.1f MiB)", at,
			 (double)at / (1 << 20));
	if (what && !a->force && !a->dry) {
		tool_err("mkfs", "%s: device holds %s%s; use --force to overwrite it", a->dev, what,
			 where);
		return TOOL_EXIT_FAIL;
	}
	if (check_reservations(a, bd, &rc) < 0)
		return TOOL_EXIT_FAIL;
	if (!a->quiet && prog->tty) {
		a->o.progress = show_progress;
		a->o.progress_arg = prog;
	}
	if (!a->dry) {
		if (what && a->force)
			rc = bdev_discard(bd, 0, VMFS_RESERVED); /* stale signatures */
		if (rc == 0)
			rc = vmfs_mkfs_write(bd, &vh, &a->o, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "clearing the reserved area: %s",
				 bdev_strerror(rc));
		if (prog->tty && prog->phase[0])
			fputc('\n', stderr);
		if (rc) {
			tool_err("mkfs", "%s: %s", a->dev, why);
			return TOOL_EXIT_FAIL;
		}
	}
	if (!a->quiet) {
		printf("%s libvmfs volume on %s%s\n", a->dry ? "Would create a" : "Created a",
		       a->dev, what && a->dry ? " (device is not empty: --force needed)" : "");
		native_print_layout(stdout, &vh);
	}
	return TOOL_EXIT_OK;
}

int cmd_mkfs(int argc, char **argv)
{
	struct mkfs_args a;
	struct bdev *bd;
	int rc = parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (tool_open("mkfs", a.dev, a.dry, &bd) < 0)
		return TOOL_EXIT_FAIL;
	rc = do_mkfs(&a, bd);
	bdev_close(bd);
	return rc;
}
