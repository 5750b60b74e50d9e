/*
 * genolake caller kernel: the one header stating its C API (pileup.c).
 *
 * Built freestanding for wasm32 (no libc, no static mutable data). The host
 * (src/call/kernel.ts) imports nothing from it but functions; it lays out every
 * buffer in the module's imported memory above __heap_base and calls one function
 * per region, so V8 optimises the loop that runs on every base of every read.
 */
#ifndef GC_CALLER_H
#define GC_CALLER_H

#include <stdint.h>

#define GC_EXPORT(name) __attribute__((export_name(#name)))

/* Per-position evidence of a region [start, end), L = end - start positions, each with
 * four slots (A, C, G, T): see src/call/pileup.ts for what each sum means. */
typedef struct {
	uint32_t *count;   /* L*4: reads showing the base with BQ >= min_bq */
	uint32_t *forward; /* L*4: of those, on the forward strand */
	float *s1, *s2, *s3; /* L*4: sums of the per-read log10 terms */
	uint32_t *depth;   /* L: reads with an aligned base there (any base quality) */
	double *mq2;       /* L: sum of MAPQ^2 over those reads */
} gc_pileup_t;

/*
 * Adds the aligned bases of n BAM records to the pileup. recs + off[i] is record i
 * (its 4-byte block_size first, as in a BAM file); mask[2i], mask[2i+1] is the reference
 * interval [lo, hi) whose bases of read i count as base evidence (depth and mq2 count
 * every aligned base). lut holds three tables of 100 floats, log10 terms by quality
 * (L1, L2, L3 of pileup.ts). The host has filtered the reads (flags, MAPQ).
 * Returns 0, or -1 on a record whose CIGAR or sequence runs past its block.
 */
int32_t gc_pileup(const uint8_t *recs, const int32_t *off, const int32_t *mask, int32_t n,
                  int32_t start, int32_t end, int32_t min_bq, const float *lut, gc_pileup_t *pu);

int32_t gc_abi(void); /* sizeof(gc_pileup_t) */

#endif
