/*
 * fuzz_img.h - the input format of the image fuzzers (fuzz_native,
 * fuzz_fsck, fuzz_vmfsr) and its decoder onto an in-memory device.
 *
 * A whole volume is too big to be a libFuzzer input, and almost all of it is
 * zeroes: an input is a sparse image.
 *
 *   OFFSET SIZE DESCRIPTION
 *   0x00   4    image size in 64 KiB units, u32 LE (clamped to 32..24576:
 *                2 MiB .. 1.5 GiB)
 *   0x04   ...  records: u32 LE byte offset, u16 LE length, then length
 *                bytes written at that offset (clipped to the image)
 *
 * A truncated record ends the input. fuzz_seed writes seeds in this format
 * (fresh native volumes, the real VMFS5/6 datastores).
 */
#ifndef FUZZ_IMG_H
#define FUZZ_IMG_H

#include <stddef.h>
#include <stdint.h>

struct bdev;

#define FUZZ_UNIT     65536u
#define FUZZ_MIN_UNIT 32u
#define FUZZ_MAX_UNIT 24576u

/* Builds a mem: device holding the image (at most max_units of 64 KiB);
 * 0 or a negative errno. A read-only image (writable 0) is presented
 * read-only (BDEV_CAP_READONLY: a parser that writes gets -EROFS) and its
 * device is kept for the next input of the same size: fuzz_image_put()
 * zeroes what the input wrote instead of freeing a device of up to
 * 1.5 GiB per run. A writable one is fresh each time and freed by
 * fuzz_image_put(). */
int fuzz_image(const uint8_t *data, size_t size, int writable, uint32_t max_units,
	       struct bdev **out);
void fuzz_image_put(struct bdev *bd);

#endif
