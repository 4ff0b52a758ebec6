/*
 * cmd_cp.c - vmfsctl cp DEVICE:/path LOCALFILE   (copy out of a volume)
 *            vmfsctl cp LOCALFILE DEVICE:/path   (copy into a volume)
 *            vmfsctl cp DEV1:/path DEV2:/path    (between volumes: migrating
 *                                                 a VM disk off a real VMFS)
 *
 * Copying out works on every format with an fsview. Copying in goes
 * through the view's import op, which native volumes provide; real VMFS
 * datastores have none and are refused as read-only. Between two volumes a
 * thread copies the source out into a pipe that the destination imports
 * from, so neither side needs the whole file in memory or on local disk.
 */
#include "fsview.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEVLEN 4096

static int quiet;		      /* -q */
static struct tool_progress progress; /* on a terminal, unless -q */

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl cp [-q] DEVICE:/PATH LOCALFILE\n"
		   "       vmfsctl cp [-q] LOCALFILE DEVICE:/PATH\n"
		   "       vmfsctl cp [-q] DEVICE:/PATH DEVICE2:/PATH\n"
		   "Copy a file out of a volume (symlinks followed), into one, or from one\n"
		   "volume to another (e.g. a VM disk from a real VMFS datastore into a\n"
		   "libvmfs volume). Runs of zeroes are written as holes.\n"
		   "Real VMFS5/VMFS6 datastores are read-only: copying into them is refused.\n"
		   "On a terminal a progress line shows bytes, rate and time left.\n"
		   "  -q  quiet: no progress line\n");
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
	tool_progress_start(&progress, "cp", st.size, quiet);
	tool_progress_out = &progress;
	rc = fsview_copy_out(v, ino, fd, &werr);
	tool_progress_end(&progress);
	tool_progress_out = NULL;
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

/* Imports the content of fd as dev:path (mode: permission bits). */
static int import_fd(const char *dev, const char *path, int fd, uint32_t mode)
{
	struct fsview *v;
	int rc = fsview_open_rw("cp", dev, &v);

	if (rc < 0)
		return rc;
	rc = v->ops->import(v, path, fd, mode);
	if (rc < 0)
		tool_err("cp", "%s: %s: %s", dev, path, fsview_strerror(v, rc));
	fsview_close(v);
	return rc;
}

static int copy_in(const char *local, const char *dev, const char *path)
{
	struct stat st;
	int fd, rc;

	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		tool_err("cp", "%s: %s", local, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TOOL_EXIT_FAIL;
	}
	if (S_ISDIR(st.st_mode)) {
		tool_err("cp", "%s: %s", local, strerror(EISDIR));
		close(fd);
		return TOOL_EXIT_FAIL;
	}
	tool_progress_start(&progress, "cp", (uint64_t)st.st_size, quiet);
	tool_progress_in = S_ISREG(st.st_mode) ? &progress : NULL;
	rc = import_fd(dev, path, fd, st.st_mode & 07777);
	tool_progress_end(&progress);
	tool_progress_in = NULL;
	close(fd);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

struct pump {
	struct fsview *v;
	uint64_t ino;
	int out;
	int rc, werr;
};

static void *pump_run(void *arg)
{
	struct pump *p = arg;

	p->rc = fsview_copy_out(p->v, p->ino, p->out, &p->werr);
	close(p->out);
	return NULL;
}

static int copy_between(const char *sdev, const char *spath, const char *ddev, const char *dpath)
{
	struct fsview_stat st;
	struct pump p = {0};
	pthread_t th;
	int fds[2], rc;

	if (fsview_open("cp", sdev, 0, &p.v) < 0)
		return TOOL_EXIT_FAIL;
	rc = p.v->ops->lookup(p.v, spath, 1, &p.ino);
	if (!rc)
		rc = p.v->ops->getattr(p.v, p.ino, &st);
	if (!rc && S_ISDIR(st.mode))
		rc = -EISDIR;
	if (!rc && pipe2(fds, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc < 0) {
		tool_err("cp", "%s: %s: %s", sdev, spath, fsview_strerror(p.v, rc));
		fsview_close(p.v);
		return TOOL_EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN); /* a failed import closes the pipe: EPIPE */
	p.out = fds[1];
	tool_progress_start(&progress, "cp", st.size, quiet);
	tool_progress_out = &progress; /* counted by the pump thread only */
	rc = -pthread_create(&th, NULL, pump_run, &p);
	if (rc < 0) {
		close(fds[0]);
		close(fds[1]);
		fsview_close(p.v);
		tool_err("cp", "%s", strerror(-rc));
		return TOOL_EXIT_FAIL;
	}
	rc = import_fd(ddev, dpath, fds[0], st.mode & 07777);
	close(fds[0]);
	pthread_join(th, NULL);
	tool_progress_end(&progress);
	tool_progress_out = NULL;
	if (p.rc < 0 && !p.werr) {
		tool_err("cp", "%s: %s: %s", sdev, spath, fsview_strerror(p.v, p.rc));
		rc = p.rc;
	}
	fsview_close(p.v);
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
	if (argc > 1 && (!strcmp(argv[1], "-q") || !strcmp(argv[1], "--quiet"))) {
		quiet = 1;
		argc--;
		argv++;
	}
	if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
		tool_err("cp", "expected SOURCE DEST, one of them DEVICE:/PATH (try 'vmfsctl cp "
			       "--help')");
		return TOOL_EXIT_USAGE;
	}
	if (fsview_split(argv[1], dev, sizeof(dev), &path)) {
		char dev2[DEVLEN];
		const char *path2;

		if (fsview_split(argv[2], dev2, sizeof(dev2), &path2))
			return copy_between(dev, path, dev2, path2);
		return copy_out(dev, path, argv[2]);
	}
	if (fsview_split(argv[2], dev, sizeof(dev), &path))
		return copy_in(argv[1], dev, path);
	tool_err("cp", "neither '%s' nor '%s' names DEVICE:/PATH (try 'vmfsctl cp --help')",
		 argv[1], argv[2]);
	return TOOL_EXIT_USAGE;
}
