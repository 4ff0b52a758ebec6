/*
 * cmd_ls.c - vmfsctl ls [-l] [-a] [-R] [--json] DEVICE [PATH]: lists a
 * directory of a libvmfs volume or a real VMFS5/6 datastore through the
 * format-neutral fsview. Entries are sorted by name;
 * -R recurses (at most MAX_DEPTH levels, never twice into one directory,
 * so a corrupt directory cycle or fan-out cannot loop or explode).
 */
#include "fsview.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DEPTH 64
#define PATHLEN	  4096

struct ls {
	struct fsview *v;
	int longfmt, all, recurse, json;
	int failed, nout;
	struct fsview_seen seen; /* directories listed so far */
	int depth;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl ls [-l] [-a] [-R] [--json] DEVICE [PATH]\n"
		   "List directory PATH (default /) of a volume (libvmfs, VMFS5 or VMFS6).\n"
		   "  -l      long format: mode, links, uid, gid, size, mtime (UTC)\n"
		   "  -a      include names starting with '.'\n"
		   "  -R      recurse into subdirectories\n"
		   "  --json  a JSON array of entries (with their full paths)\n");
}

static void print_json(struct ls *ls, const char *path, const char *name,
		       const struct fsview_stat *st, const char *target)
{
	printf("%s\n  {\"path\": ", ls->nout++ ? "," : "");
	fsview_json_str(stdout, path);
	printf(", \"name\": ");
	fsview_json_str(stdout, name);
	printf(", \"ino\": %llu, \"type\": \"%s\", \"mode\": %u, \"nlink\": %u, \"uid\": %u, "
	       "\"gid\": %u, \"size\": %llu, \"blocks\": %llu, \"atime\": %lld, \"mtime\": %lld, "
	       "\"ctime\": %lld",
	       (unsigned long long)st->ino, fsview_type_name(st->mode), st->mode & 07777, st->nlink,
	       st->uid, st->gid, (unsigned long long)st->size, (unsigned long long)st->blocks,
	       (long long)st->atime, (long long)st->mtime, (long long)st->ctime);
	if (S_ISCHR(st->mode) || S_ISBLK(st->mode))
		printf(", \"major\": %u, \"minor\": %u", st->rdev_major, st->rdev_minor);
	if (target) {
		printf(", \"target\": ");
		fsview_json_str(stdout, target);
	}
	printf("}");
}

static void print_entry(struct ls *ls, const char *path, const char *name,
			const struct fsview_stat *st, const char *target)
{
	char mode[11], tm[32], size[32];

	if (ls->json) {
		print_json(ls, path, name, st, target);
		return;
	}
	if (!ls->longfmt) {
		printf("%s\n", name);
		return;
	}
	fsview_mode_str(st->mode, mode);
	fsview_time_str(st->mtime, tm);
	if (S_ISCHR(st->mode) || S_ISBLK(st->mode)) /* "major, minor" as ls(1) */
		snprintf(size, sizeof(size), "%u, %u", st->rdev_major, st->rdev_minor);
	else
		snprintf(size, sizeof(size), "%llu", (unsigned long long)st->size);
	printf("%s %3u %5u %5u %12s %s %s%s%s\n", mode, st->nlink, st->uid, st->gid, size, tm, name,
	       target ? " -> " : "", target ? target : "");
}

/* Prints one entry; returns 1 when it is a directory to recurse into. */
static int show(struct ls *ls, const char *path, const char *name, uint64_t ino)
{
	struct fsview_stat st;
	char target[PATHLEN];
	int rc = ls->v->ops->getattr(ls->v, ino, &st);

	if (rc < 0) {
		tool_err("ls", "%s: %s", path, fsview_strerror(ls->v, rc));
		ls->failed = 1;
		return 0;
	}
	target[0] = 0;
	if (S_ISLNK(st.mode)) {
		rc = ls->v->ops->readlink(ls->v, ino, target, sizeof(target));
		if (rc < 0) {
			tool_err("ls", "%s: %s", path, fsview_strerror(ls->v, rc));
			ls->failed = 1;
			snprintf(target, sizeof(target), "?");
		}
	}
	print_entry(ls, path, name, &st, S_ISLNK(st.mode) ? target : NULL);
	return S_ISDIR(st.mode);
}

static int visible(const struct ls *ls, const char *name)
{
	return ls->all || name[0] != '.';
}

static void list_dir(struct ls *ls, const char *path, uint64_t ino);

static void recurse(struct ls *ls, const char *path, const struct fsview_dir *d, const char *isdir)
{
	char sub[PATHLEN];

	for (size_t i = 0; i < d->n; i++) {
		const char *name = d->e[i].name;

		if (!isdir[i] || !strcmp(name, ".") || !strcmp(name, "..") || !visible(ls, name))
			continue;
		if (fsview_join(sub, sizeof(sub), path, name) < 0)
			continue;
		if (ls->depth >= MAX_DEPTH || fsview_seen_add(&ls->seen, d->e[i].ino) != 1) {
			tool_err("ls",
				 "%s: directory already listed (cycle) or nesting too deep, "
				 "not descending",
				 sub);
			ls->failed = 1;
			continue;
		}
		if (!ls->json)
			printf("\n%s:\n", sub);
		list_dir(ls, sub, d->e[i].ino);
	}
}

static void list_dir(struct ls *ls, const char *path, uint64_t ino)
{
	struct fsview_dir d;
	char sub[PATHLEN], *isdir;
	int rc = fsview_list(ls->v, ino, &d);

	if (rc < 0) {
		tool_err("ls", "%s: %s", path, fsview_strerror(ls->v, rc));
		ls->failed = 1;
		return;
	}
	isdir = calloc(d.n + 1, 1);
	for (size_t i = 0; isdir && i < d.n; i++) {
		if (!visible(ls, d.e[i].name))
			continue;
		if (fsview_join(sub, sizeof(sub), path, d.e[i].name) < 0)
			continue;
		isdir[i] = (char)show(ls, sub, d.e[i].name, d.e[i].ino);
	}
	if (ls->recurse && isdir) {
		ls->depth++;
		recurse(ls, path, &d, isdir);
		ls->depth--;
	}
	free(isdir);
	fsview_dir_free(&d);
}

static int run(struct ls *ls, const char *dev, const char *path)
{
	struct fsview_stat st;
	uint64_t ino;
	int rc;

	if (fsview_open("ls", dev, 0, &ls->v) < 0)
		return TOOL_EXIT_FAIL;
	rc = ls->v->ops->lookup(ls->v, path, 0, &ino);
	if (!rc)
		rc = ls->v->ops->getattr(ls->v, ino, &st);
	if (rc < 0) {
		tool_err("ls", "%s: %s: %s", dev, path, fsview_strerror(ls->v, rc));
		fsview_close(ls->v);
		return TOOL_EXIT_FAIL;
	}
	if (ls->json)
		printf("[");
	if (S_ISDIR(st.mode)) {
		if (ls->recurse && !ls->json)
			printf("%s:\n", path);
		fsview_seen_add(&ls->seen, ino);
		list_dir(ls, path, ino);
	} else {
		const char *base = strrchr(path, '/');

		show(ls, path, base && base[1] ? base + 1 : path, ino);
	}
	if (ls->json)
		printf("\n]\n");
	fsview_seen_free(&ls->seen);
	fsview_close(ls->v);
	return ls->failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct ls ls = {0};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "laRh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': ls.longfmt = 1; break;
		case 'a': ls.all = 1; break;
		case 'R': ls.recurse = 1; break;
		case 'j': ls.json = 1; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		default:
			tool_err("ls", "unknown option '%s' (try 'vmfsctl ls --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		tool_err("ls", "expected DEVICE [PATH] (try 'vmfsctl ls --help')");
		return TOOL_EXIT_USAGE;
	}
	return run(&ls, argv[optind], optind + 1 < argc ? argv[optind + 1] : "/");
}
