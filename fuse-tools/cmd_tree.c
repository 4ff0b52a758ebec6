/*
 * cmd_tree.c - vmfsctl tree [-a] DEVICE [PATH]: prints a directory tree of
 * a volume (libvmfs, VMFS5 or VMFS6). Never descends twice into one directory (a corrupt
 * cycle or fan-out) nor deeper than MAX_DEPTH.
 */
#include "fsview.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DEPTH 64
#define PATHLEN	  4096

struct tree {
	struct fsview *v;
	int all, failed;
	unsigned long ndirs, nfiles;
	struct fsview_seen seen; /* directories walked so far */
	char prefix[MAX_DEPTH * 4 + 8];
	int depth;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl tree [-a] DEVICE [PATH]\n"
		   "Print the directory tree under PATH (default /) of a volume (libvmfs, VMFS5 or "
		   "VMFS6).\n"
		   "  -a  include names starting with '.'\n");
}

static void walk(struct tree *t, const char *path, uint64_t ino);

static void node(struct tree *t, const char *path, const struct fsview_dent *e, int last)
{
	struct fsview_stat st;
	char sub[PATHLEN], target[PATHLEN] = "";
	size_t plen = strlen(t->prefix);
	int rc = t->v->ops->getattr(t->v, e->ino, &st);

	printf("%s%s%s", t->prefix, last ? "`-- " : "|-- ", e->name);
	if (rc < 0) {
		printf("  [error]\n");
		tool_err("tree", "%s/%s: %s", path, e->name, fsview_strerror(t->v, rc));
		t->failed = 1;
		return;
	}
	if (S_ISLNK(st.mode) && t->v->ops->readlink(t->v, e->ino, target, sizeof(target)) >= 0)
		printf(" -> %s", target);
	printf("\n");
	if (!S_ISDIR(st.mode)) {
		t->nfiles++;
		return;
	}
	t->ndirs++;
	if (fsview_join(sub, sizeof(sub), path, e->name) < 0)
		return;
	snprintf(t->prefix + plen, sizeof(t->prefix) - plen, "%s", last ? "    " : "|   ");
	walk(t, sub, e->ino);
	t->prefix[plen] = 0;
}

static void walk(struct tree *t, const char *path, uint64_t ino)
{
	struct fsview_dir d;
	size_t last = 0;
	int rc;

	if (t->depth >= MAX_DEPTH || fsview_seen_add(&t->seen, ino) != 1) {
		tool_err("tree",
			 "%s: directory already shown (cycle) or nesting too deep, not "
			 "descending",
			 path);
		t->failed = 1;
		return;
	}
	rc = fsview_list(t->v, ino, &d);
	if (rc < 0) {
		tool_err("tree", "%s: %s", path, fsview_strerror(t->v, rc));
		t->failed = 1;
		return;
	}
	for (size_t i = 0; i < d.n; i++)
		if (strcmp(d.e[i].name, ".") && strcmp(d.e[i].name, "..") &&
		    (t->all || d.e[i].name[0] != '.'))
			last = i + 1;
	t->depth++;
	for (size_t i = 0; i < last; i++)
		if (strcmp(d.e[i].name, ".") && strcmp(d.e[i].name, "..") &&
		    (t->all || d.e[i].name[0] != '.'))
			node(t, path, &d.e[i], i + 1 == last);
	t->depth--;
	fsview_dir_free(&d);
}

static int run(struct tree *t, const char *dev, const char *path)
{
	struct fsview_stat st;
	uint64_t ino;
	int rc;

	if (fsview_open("tree", dev, 0, &t->v) < 0)
		return TOOL_EXIT_FAIL;
	rc = t->v->ops->lookup(t->v, path, 1, &ino);
	if (!rc)
		rc = t->v->ops->getattr(t->v, ino, &st);
	if (!rc && !S_ISDIR(st.mode))
		rc = -ENOTDIR;
	if (rc < 0) {
		tool_err("tree", "%s: %s: %s", dev, path, fsview_strerror(t->v, rc));
		fsview_close(t->v);
		return TOOL_EXIT_FAIL;
	}
	printf("%s\n", path);
	walk(t, path, ino);
	printf("\n%lu director%s, %lu file%s\n", t->ndirs, t->ndirs == 1 ? "y" : "ies", t->nfiles,
	       t->nfiles == 1 ? "" : "s"); /* as tree(1) */
	fsview_seen_free(&t->seen);
	fsview_close(t->v);
	return t->failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

int cmd_tree(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct tree t = {0};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		switch (c) {
		case 'a': t.all = 1; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		default:
			tool_err("tree", "unknown option '%s' (try 'vmfsctl tree --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		tool_err("tree", "expected DEVICE [PATH] (try 'vmfsctl tree --help')");
		return TOOL_EXIT_USAGE;
	}
	return run(&t, argv[optind], optind + 1 < argc ? argv[optind + 1] : "/");
}
