/*
 * cmd_stat.c - vmfsctl stat [-L] [--json] DEVICE PATH: a file's attributes
 * on a volume (symlinks not followed unless -L, like stat(1)).
 */
#include "fsview.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PATHLEN 4096

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl stat [-L] [--json] DEVICE PATH\n"
		   "Show the attributes of PATH on a volume (libvmfs, VMFS5 or VMFS6).\n"
		   "  -L      follow a final symlink\n"
		   "  --json  one JSON object\n");
}

static void print_json(const char *path, const struct fsview_stat *st, const char *target)
{
	printf("{\"path\": ");
	fsview_json_str(stdout, path);
	printf(", \"ino\": %llu, \"type\": \"%s\", \"mode\": %u, \"nlink\": %u, \"uid\": %u, "
	       "\"gid\": %u, \"size\": %llu, \"blocks\": %llu, \"blksize\": %llu, \"atime\": %lld, "
	       "\"mtime\": %lld, \"ctime\": %lld",
	       (unsigned long long)st->ino, fsview_type_name(st->mode), st->mode & 07777, st->nlink,
	       st->uid, st->gid, (unsigned long long)st->size, (unsigned long long)st->blocks,
	       (unsigned long long)st->blksize, (long long)st->atime, (long long)st->mtime,
	       (long long)st->ctime);
	if (S_ISCHR(st->mode) || S_ISBLK(st->mode))
		printf(", \"major\": %u, \"minor\": %u", st->rdev_major, st->rdev_minor);
	if (target) {
		printf(", \"target\": ");
		fsview_json_str(stdout, target);
	}
	printf("}\n");
}

static void print_text(const char *path, const struct fsview_stat *st, const char *target)
{
	char mode[11], a[32], m[32], c[32];

	fsview_mode_str(st->mode, mode);
	fsview_time_str(st->atime, a);
	fsview_time_str(st->mtime, m);
	fsview_time_str(st->ctime, c);
	printf("  File: %s%s%s\n", path, target ? " -> " : "", target ? target : "");
	printf("  Type: %s\n", fsview_type_name(st->mode));
	printf(" Inode: 0x%08llx\n", (unsigned long long)st->ino);
	printf("  Mode: %04o (%s)\n", st->mode & 07777, mode);
	printf(" Links: %u\n", st->nlink);
	printf("   Uid: %u\n   Gid: %u\n", st->uid, st->gid);
	printf("  Size: %llu\n", (unsigned long long)st->size);
	if (S_ISCHR(st->mode) || S_ISBLK(st->mode))
		printf("Device: %u,%u\n", st->rdev_major, st->rdev_minor);
	printf("Blocks: %llu (512 B)  Block size: %llu\n", (unsigned long long)st->blocks,
	       (unsigned long long)st->blksize);
	printf("Access: %s UTC\nModify: %s UTC\nChange: %s UTC\n", a, m, c);
}

static int run(const char *dev, const char *path, int follow, int json)
{
	struct fsview *v;
	struct fsview_stat st;
	char target[PATHLEN];
	uint64_t ino;
	int rc;

	if (fsview_open("stat", dev, 0, &v) < 0)
		return TOOL_EXIT_FAIL;
	rc = v->ops->lookup(v, path, follow, &ino);
	if (!rc)
		rc = v->ops->getattr(v, ino, &st);
	if (!rc && S_ISLNK(st.mode))
		rc = v->ops->readlink(v, ino, target, sizeof(target));
	if (rc < 0) {
		tool_err("stat", "%s: %s: %s", dev, path, fsview_strerror(v, rc));
		fsview_close(v);
		return TOOL_EXIT_FAIL;
	}
	if (json)
		print_json(path, &st, S_ISLNK(st.mode) ? target : NULL);
	else
		print_text(path, &st, S_ISLNK(st.mode) ? target : NULL);
	fsview_close(v);
	return TOOL_EXIT_OK;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c, json = 0, follow = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "Lh", opts, NULL)) != -1) {
		switch (c) {
		case 'L': follow = 1; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		default:
			tool_err("stat", "unknown option '%s' (try 'vmfsctl stat --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		tool_err("stat", "expected DEVICE PATH (try 'vmfsctl stat --help')");
		return TOOL_EXIT_USAGE;
	}
	return run(argv[optind], argv[optind + 1], follow, json);
}
