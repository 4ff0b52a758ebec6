/*
 * fuzz_fsck.c - libFuzzer harness: the offline checker (vmfs_check(), check
 * only, as `vmfsctl fsck -n` without the heartbeat observation) over a
 * native volume given as a sparse input (fuzz_img.h). It reads every
 * structure of the format, so this is the widest parser fuzzer.
 */
#include <stdint.h>

#include "bdev.h"
#include "format.h"
#include "fuzz_img.h"

static void quiet(void *arg, const char *region, const char *msg)
{
	(void)arg;
	(void)region;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmfs_check_stats st;
	struct bdev *bd;
	unsigned fixed;

	if (fuzz_image(data, size, 0, FUZZ_MAX_UNIT, &bd))
		return 0;
	vmfs_check(bd, 0, quiet, NULL, &st, &fixed);
	fuzz_image_put(bd);
	return 0;
}
