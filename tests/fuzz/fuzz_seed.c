/*
 * fuzz_seed.c - writes the seed corpora of the fuzzers, at build/test time
 * into the build directory (nothing generated is kept in the repository):
 *
 *   fuzz_seed native DIR          fresh native volumes (mkfs + files through
 *                                 the library) as sparse inputs (fuzz_img.h),
 *                                 with and without their journals' logs
 *   fuzz_seed records DIR         every non-zero metadata block of such a
 *                                 volume, one 4 KiB seed each (fuzz_records)
 *   fuzz_seed real IMG.gz DIR N   a real datastore (gzip'd image): N-whole
 *                                 (every non-zero sector) and N-meta (each
 *                                 run of non-zero sectors cut to 4 KiB)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bdev.h"
#include "format.h"
#include "fuzz_img.h"
#include "vmfs.h"

#define SEC	 512u
#define MAX_RUN	 65024u /* largest record: a multiple of 512 below 65536 */
#define META_RUN 4096u

struct out {
	FILE *f;
	uint64_t run_off; /* start of the pending run */
	uint32_t run_len;
	uint32_t cut; /* records cut to this length (0: whole) */
	uint8_t *run;
};

static void put32(FILE *f, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	fwrite(b, 1, 4, f);
}

static void flush_run(struct out *o)
{
	uint32_t len = o->cut && o->run_len > o->cut ? o->cut : o->run_len;
	uint8_t h[2] = {(uint8_t)len, (uint8_t)(len >> 8)};

	if (!o->run_len)
		return;
	put32(o->f, (uint32_t)o->run_off);
	fwrite(h, 1, 2, o->f);
	fwrite(o->run, 1, len, o->f);
	o->run_len = 0;
}

/* Feeds one sector at byte offset off. */
static void sector(struct out *o, uint64_t off, const uint8_t *s)
{
	int zero = 1;

	for (unsigned i = 0; i < SEC && zero; i++)
		zero = !s[i];
	if (zero || (o->run_len && (o->run_off + o->run_len != off || o->run_len == MAX_RUN)))
		flush_run(o);
	if (zero)
		return;
	if (!o->run_len)
		o->run_off = off;
	memcpy(o->run + o->run_len, s, SEC);
	o->run_len += SEC;
}

static int open_out(struct out *o, const char *path, uint64_t size, uint32_t cut)
{
	memset(o, 0, sizeof(*o));
	o->f = fopen(path, "wb");
	o->run = malloc(MAX_RUN);
	o->cut = cut;
	if (!o->f || !o->run || size > (uint64_t)FUZZ_MAX_UNIT * FUZZ_UNIT) {
		fprintf(stderr, "fuzz_seed: %s: cannot write\n", path);
		exit(1);
	}
	put32(o->f, (uint32_t)((size + FUZZ_UNIT - 1) / FUZZ_UNIT));
	return 0;
}

static void close_out(struct out *o)
{
	flush_run(o);
	fclose(o->f);
	free(o->run);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_seed: %s: %s\n", what, vmfs_strerror(rc));
	exit(1);
}

#define CK(e)                                                                                      \
	do {                                                                                       \
		int rc_ = (e);                                                                     \
		if (rc_ < 0)                                                                       \
			die(#e, rc_);                                                              \
	} while (0)

/* ---- native volumes ----------------------------------------------------------- */

static void write_file(struct vmfs *fs, const char *path, uint64_t size)
{
	static uint8_t buf[65536];
	struct vmfs_file *f;

	CK(vmfs_open(fs, path, O_CREAT | O_RDWR, 0644, &f));
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);

		/* Small files full of bytes, big ones zero (written, so
		 * allocated): file data costs a seed no room, the fuzzer's
		 * mutations go to the metadata. */
		memset(buf, size > sizeof(buf) ? 0 : 0x5a, n);
		if (vmfs_write(f, buf, n, off) != (ssize_t)n)
			die(path, -EIO);
	}
	CK(vmfs_close(f));
}

static void populate(struct bdev *bd)
{
	struct vmfs_mount_opts o = {.hostname = "seed"};
	struct vmfs *fs;
	char p[64];

	CK(vmfs_mount_bdev(bd, &o, &fs));
	CK(vmfs_mkdir(fs, "/d", 0755));
	CK(vmfs_mkdir(fs, "/d/e", 0700));
	write_file(fs, "/inline", 100);
	write_file(fs, "/d/sub", 20000);
	write_file(fs, "/d/e/big", 258u * 65536);
	CK(vmfs_symlink(fs, "d/sub", "/sym"));
	CK(vmfs_link(fs, "/inline", "/d/hard"));
	CK(vmfs_setxattr(fs, "/inline", "user.seed", "xattr value", 11, 0));
	for (int i = 0; i < 40; i++) { /* two buckets: a split */
		snprintf(p, sizeof(p), "/d/f%02d", i);
		write_file(fs, p, (uint64_t)i * 37);
	}
	CK(vmfs_umount(fs));
}

/* Zeroes the journals' logs (retired transactions; the headers stay): most
 * of a used volume's non-zero metadata, read by nothing but replay. */
static void drop_logs(struct bdev *bd)
{
	struct vmfs_vh vh;
	char why[256];

	CK(vmfs_vh_read(bd, &vh, why, sizeof(why)));
	for (uint32_t s = 0; s < vh.max_hosts; s++)
		CK(bdev_write_zeroes(bd, vmfs_journal_off(&vh, s) + VMFS_UNIT,
				     vh.journal_size - VMFS_UNIT));
}

static struct bdev *make(uint64_t size, uint32_t bs, uint32_t hosts, int files)
{
	struct vmfs_mkfs_opts o = {.label = "seed",
				   .block_size = bs,
				   .max_hosts = hosts,
				   .journal_size = 256u << 10,
				   .hb_interval_ms = 250,
				   .hb_timeout_ms = 2000,
				   .nlocks = 2,
				   .nfds = 256};
	struct vmfs_vh vh;
	struct bdev *bd;
	char uri[32], why[256];

	snprintf(uri, sizeof(uri), "mem:%" PRIu64, size);
	CK(bdev_open(uri, 0, &bd));
	if (vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why)) ||
	    vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why))) {
		fprintf(stderr, "fuzz_seed: mkfs: %s\n", why);
		exit(1);
	}
	if (files)
		populate(bd);
	if (files == 1)
		drop_logs(bd);
	return bd;
}

static void dump(struct bdev *bd, const char *path)
{
	uint8_t *buf = bdev_alloc(1u << 20);
	struct out o;

	open_out(&o, path, bd->size, 0);
	for (uint64_t off = 0; off < bd->size; off += 1u << 20) {
		CK(bdev_read(bd, buf, off, 1u << 20));
		for (unsigned i = 0; i < (1u << 20); i += SEC)
			sector(&o, off + i, buf + i);
	}
	close_out(&o);
	bdev_free(buf);
}

static void native(const char *dir)
{
	static const struct {
		const char *name;
		uint64_t size;
		uint32_t bs, hosts;
		int files;
	} cf[] = {
	    {"native-empty", 8u << 20, 64u << 10, 1, 0},
	    {"native-files", 48u << 20, 64u << 10, 2, 1},
	    {"native-1m", 24u << 20, 1u << 20, 2, 0},
	    {"native-files-logs", 48u << 20, 64u << 10, 2, 2},
	};
	char path[4096];

	for (size_t i = 0; i < sizeof(cf) / sizeof(cf[0]); i++) {
		struct bdev *bd = make(cf[i].size, cf[i].bs, cf[i].hosts, cf[i].files);

		snprintf(path, sizeof(path), "%s/%s", dir, cf[i].name);
		dump(bd, path);
		bdev_close(bd);
	}
}

static void records(const char *dir)
{
	struct bdev *bd = make(48u << 20, 64u << 10, 2, 1);
	uint8_t *b = bdev_alloc(VMFS_UNIT);
	struct vmfs_vh vh;
	char path[4096], why[256];
	int n = 0;

	CK(vmfs_vh_read(bd, &vh, why, sizeof(why)));
	for (uint64_t off = VMFS_VH_OFF; off < vh.data_off + 8 * 65536ull; off += VMFS_UNIT) {
		FILE *f;
		int zero = 1;

		CK(bdev_read(bd, b, off, VMFS_UNIT));
		for (unsigned i = 0; i < VMFS_UNIT && zero; i++)
			zero = !b[i];
		if (zero)
			continue;
		snprintf(path, sizeof(path), "%s/block-%08" PRIx64, dir, off);
		f = fopen(path, "wb");
		if (!f || fwrite(b, 1, VMFS_UNIT, f) != VMFS_UNIT || fclose(f)) {
			fprintf(stderr, "fuzz_seed: %s: cannot write\n", path);
			exit(1);
		}
		n++;
	}
	bdev_free(b);
	bdev_close(bd);
	printf("fuzz_seed: %d record seeds\n", n);
}

/* ---- real datastores ----------------------------------------------------------- */

static void real(const char *gz, const char *dir, const char *name)
{
	gzFile z = gzopen(gz, "rb");
	static uint8_t s[SEC];
	struct out whole, meta;
	char p1[4096], p2[4096];
	uint64_t off = 0, size = 0;
	int n;

	if (!z) {
		fprintf(stderr, "fuzz_seed: %s: cannot open\n", gz);
		exit(1);
	}
	while ((n = gzread(z, s, SEC)) == (int)SEC)
		size += SEC;
	gzrewind(z);
	snprintf(p1, sizeof(p1), "%s/%s-whole", dir, name);
	snprintf(p2, sizeof(p2), "%s/%s-meta", dir, name);
	open_out(&whole, p1, size, 0);
	open_out(&meta, p2, size, META_RUN);
	for (; gzread(z, s, SEC) == (int)SEC; off += SEC) {
		sector(&whole, off, s);
		sector(&meta, off, s);
	}
	close_out(&whole);
	close_out(&meta);
	gzclose(z);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "native"))
		native(argv[2]);
	else if (argc == 3 && !strcmp(argv[1], "records"))
		records(argv[2]);
	else if (argc == 5 && !strcmp(argv[1], "real"))
		real(argv[2], argv[3], argv[4]);
	else {
		fprintf(stderr,
			"usage: fuzz_seed native DIR | records DIR | real IMG.gz DIR NAME\n");
		return 2;
	}
	return 0;
}
