/*
 * fuzz_repair.c - libFuzzer harness: `fsck -y` (vmfs_check() with
 * VMFS_CHECK_REPAIR, without the heartbeat observation: no lock manager)
 * over a native volume given as a sparse input (fuzz_img.h), then a check
 * of the result. The repairs write to the in-memory device; whatever the
 * damage, they must not crash, hang or leak, and the volume must still be
 * readable by the checker afterwards.
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

	if (fuzz_image(data, size, 1, 1024, &bd))
		return 0;
	vmfs_check(bd, VMFS_CHECK_REPAIR, quiet, NULL, &st, &fixed);
	vmfs_check(bd, 0, quiet, NULL, &st, &fixed);
	fuzz_image_put(bd);
	return 0;
}
