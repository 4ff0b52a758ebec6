/*
 * example.c - a program built against the installed libvmfs: lists the
 * root directory of a volume, mounted read-only (no heartbeat slot, nothing
 * written). Build it with pkg-config:
 *
 *   cc -o vmfs-ls example.c $(pkg-config --cflags --libs libvmfs)
 *   ./vmfs-ls lun.img
 */
#include <stdio.h>
#include <vmfs.h>

static int print_name(void *arg, const char *name, unsigned type, uint64_t ino)
{
	(void)arg, (void)type, (void)ino;
	return puts(name) < 0;
}

int main(int argc, char **argv)
{
	struct vmfs_mount_opts o = {.read_only = 1};
	struct vmfs *fs;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DEVICE\n", argv[0]);
		return 2;
	}
	rc = vmfs_mount(argv[1], &o, &fs);
	if (rc < 0) {
		fprintf(stderr, "%s: %s (%s)\n", argv[1], vmfs_strerror(rc), vmfs_errmsg(NULL));
		return 1;
	}
	rc = vmfs_readdir(fs, "/", print_name, NULL);
	if (rc != 0)
		fprintf(stderr, "%s: /: %s\n", argv[1],
			rc < 0 ? vmfs_strerror(rc) : "output error");
	vmfs_umount(fs);
	return rc ? 1 : 0;
}
