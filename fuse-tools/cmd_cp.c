/*
 * cmd_cp.c - vmfsctl cp DEVICE:/path LOCALFILE   (copy out of a volume)
 *            vmfsctl cp LOCALFILE DEVICE:/path   (copy into a volume)
 *
 * Copying out works on every format with an fsview. Copying in goes
 * through the view's import op, the single call a writable format (the
 * native file system, once it exists) provides; real VMFS datastores have
 * none and are refused as read-only.
 */
#include "fsview.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEVLEN 4096

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl cp DEVICE:/PATH LOCALFILE\n"
		   "       vmfsctl cp LOCALFILE DEVICE:/PATH\n"
		   "Copy a file out of a volume (symlinks followed), or into one.\n"
		   "Real VMFS5/VMFS6 datastores are read-only: copying into them is refused.\n");
}

static int copy_out(const char *dev, const char *path, const char *local)
{
	struct fsview *v;
	struct fsview_stat st;
	uint64_t ino;
	int fd, werr, rc;

	if (fsview_open("cp", dev, 0, &v) < 0)
		return TOOL_EXIT_FAIL;
	rc = v->ops->lookup(v, path, 1, &ino);
	if (!rc)
		rc = v->ops->getattr(v, ino, &st);
	if (!rc && S_ISDIR(st.mode))
		rc = -EISDIR;
	if (rc < 0) {
		tool_err("cp", "%s: %s: %s", dev, path, fsview_strerror(v, rc));
		fsview_close(v);
		return TOOL_EXIT_FAIL;
	}
	fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (st.mode & 0777) | 0600);
	if (fd < 0) {
		tool_err("cp", "%s: %s", local, strerror(errno));
		fsview_close(v);
		return TOOL_EXIT_FAIL;
	}
	rc = fsview_copy_out(v, ino, fd, &werr);
	if (close(fd) < 0 && !rc) {
		rc = -errno;
		werr = 1;
	}
	if (rc < 0) {
		if (werr)
			tool_err("cp", "%s: %s", local, strerror(-rc));
		else
			tool_err("cp", "%s: %s: %s", dev, path, fsview_strerror(v, rc));
		unlink(local);
	}
	fsview_close(v);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

static int copy_in(const char *local, const char *dev, const char *path)
{
	struct fsview *v;
	struct stat st;
	int fd, rc;

	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		tool_err("cp", "%s: %s", local, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TOOL_EXIT_FAIL;
	}
	/* Detect read-only first: a real VMFS is never opened for writing. */
	if (fsview_open("cp", dev, 0, &v) < 0) {
		close(fd);
		return TOOL_EXIT_FAIL;
	}
	if (!v->ops->import) {
		tool_err("cp", "%s: real VMFS datastores are read-only (%s)", dev, v->kind);
		rc = -EROFS;
	} else {
		fsview_close(v);
		if (fsview_open("cp", dev, 1, &v) < 0) {
			close(fd);
			return TOOL_EXIT_FAIL;
		}
		rc = v->ops->import(v, path, fd, st.st_mode & 07777);
		if (rc < 0)
			tool_err("cp", "%s: %s: %s", dev, path, fsview_strerror(v, rc));
	}
	fsview_close(v);
	close(fd);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

int cmd_cp(int argc, char **argv)
{
	char dev[DEVLEN];
	const char *path;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
		tool_err("cp", "expected SOURCE DEST, one of them DEVICE:/PATH (try 'vmfsctl cp "
			       "--help')");
		return TOOL_EXIT_USAGE;
	}
	if (fsview_split(argv[1], dev, sizeof(dev), &path))
		return copy_out(dev, path, argv[2]);
	if (fsview_split(argv[2], dev, sizeof(dev), &path))
		return copy_in(argv[1], dev, path);
	tool_err("cp", "neither '%s' nor '%s' names DEVICE:/PATH (try 'vmfsctl cp --help')",
		 argv[1], argv[2]);
	return TOOL_EXIT_USAGE;
}
