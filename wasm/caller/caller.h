/*
 * genolake caller kernel: the one header stating its C API (pileup.c, realign.c, genotype.c).
 *
 * Built freestanding for wasm32 (no libc, no static mutable data). The module imports
 * its memory and two functions of the host's Math (log10, pow: genotype.c); the host
 * (src/call/kernel.ts) lays out every buffer in that memory above __heap_base and calls
 * each function once per region (or batch), so V8 optimises the loops inside.
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

/* A realignment site: the reference window [ws, we) whose read bases are realigned, and its
 * haplotypes haps[hap0 .. hap0 + n_hap) (the reference first, then one per candidate indel),
 * which all start at reference position hs. band: half-width of the alignment band around
 * a read's place (plus the read's own indels in the window). */
typedef struct {
	int32_t ws, we;
	int32_t hap0, n_hap;
	int32_t hs, band;
} gc_site_t;

/* A haplotype: hap_seq[off .. off + len), bases 0..3 (A, C, G, T), 4 for anything else. */
typedef struct {
	int32_t off, len;
} gc_hap_t;

/* One read at one site: out[out .. out + n_hap) receives log10 P(read segment | haplotype). */
typedef struct {
	int32_t site, read, out;
} gc_job_t;

/*
 * For every job, the bases of record `read` (recs + off[read], as in gc_pileup) whose
 * projection on the reference lies in the site's window (soft clips continue the
 * alignment outwards, inserted bases sit between their neighbours) are aligned against
 * each haplotype of the site with a base-quality pair-HMM (realign.c), gap open and
 * extension probabilities 10^(-q/10). A read with no base in the window gets 0 for every
 * haplotype. seg: 131072 bytes of scratch; scratch: 6 * (longest haplotype + 1) doubles.
 * Returns 0, or -1 on a malformed record.
 */
int32_t gc_realign(const uint8_t *recs, const int32_t *off, const gc_site_t *sites, const gc_hap_t *haps,
                   const uint8_t *hap_seq, const gc_job_t *jobs, int32_t n_jobs, int32_t gap_open_q, int32_t gap_ext_q,
                   uint8_t *seg, double *scratch, double *out);

/* A site to genotype (gc_genotype). kind 0, an SNV: per sample 12 doubles of evidence,
 * S1, S2, S3 of the bases A, C, G, T (pileup.ts), and alleles[] the base of each allele.
 * kind 1, an indel: per sample the read count R, then per read the log10 likelihood of
 * each allele and the read's cap (its likelihoods are floored at best - cap). */
typedef struct {
	int32_t kind;
	int32_t n_alleles; /* 1..4 */
	int32_t alleles[4];
	int32_t data;      /* first double of the site's evidence in data */
	int32_t out;       /* first int32 of the site's output in out */
	double theta;      /* heterozygosity prior */
} gc_gsite_t;
_Static_assert(sizeof(gc_gsite_t) == 40, "gc_gsite_t layout is shared with src/call/kernel.ts");

/*
 * Genotype likelihoods, posteriors and calls of n_sites sites over n_samples samples
 * (callSite in src/call/genotype.ts). Writes qual[site] and, per sample, the index of the
 * called genotype (VCF order), GQ and the PL of every genotype. Returns 0, or -1 on a site
 * with a bad allele count.
 */
int32_t gc_genotype(const gc_gsite_t *sites, int32_t n_sites, int32_t n_samples, const double *data, int32_t *out, double *qual);

#endif
