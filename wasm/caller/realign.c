/*
 * Local realignment of reads against candidate haplotypes: P(read | haplotype) for every
 * (site, read) job of a region, in one call.
 *
 * Why a pair-HMM (forward algorithm) and not a banded best-path alignment: a genotype
 * needs the probability of the read given the haplotype, summed over every way the read
 * can sit on it. In a repeat the indel can be placed at several equivalent offsets, and a
 * best path counts only one of them, so a read spanning a homopolymer would score a
 * deletion differently depending on where the aligner put the gap. The forward sum is
 * invariant to that, and its mismatch term comes straight from the base quality
 * (1 - e on a match, e/3 on a mismatch), the model bcftools' probaln and GATK use.
 *
 * The alignment is glocal: the read segment is aligned end to end, the haplotype is free
 * at both ends (it starts in the deletion row with 1/n on every haplotype base, the way
 * GATK does), so a segment can slide along the haplotype.
 *
 * No SIMD here: the D state depends on its left neighbour in the same row, so a row does
 * not vectorise, and anti-diagonals of a ~60 x ~90 matrix in f64x2 (doubles are needed:
 * a 100-base segment against the wrong haplotype reaches 1e-300) win little next to the
 * bookkeeping. Rows are rescaled when they drop below 1e-200, so a segment never underflows.
 */
#include "caller.h"

static inline uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#define SEG_MAX 65536 /* bases of one read in one window, at most (seg holds two such arrays) */

/* 4-bit BAM base code -> 0..3 for A, C, G, T; 4 for anything else. */
static const uint8_t nt16_base[16] = { 4, 0, 1, 4, 2, 4, 4, 4, 3, 4, 4, 4, 4, 4, 4, 4 };

/* log10 of x > 0 without libm: exponent from the bits, mantissa by a series in atanh. */
static double log10_pos(double x)
{
	union { double d; uint64_t u; } v = { x };
	int32_t e = (int32_t)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* mantissa in [1, 2) */
	double m = v.d;
	if (m > 1.4142135623730951) { m *= 0.5; e++; }
	const double t = (m - 1) / (m + 1), t2 = t * t;
	/* ln m = 2 atanh t, |t| <= 0.172: 9 terms reach double precision */
	double s = 0, p = t;
	for (int k = 1; k <= 17; k += 2) { s += p / k; p *= t2; }
	return (2 * s + e * 0.6931471805599453) * 0.4342944819032518;
}

static double pow10_neg(int32_t q) /* 10^(-q/10) for 0 <= q <= 99, by squaring */
{
	double r = 1, b = 0.7943282347242815; /* 10^-0.1 */
	for (int32_t k = q; k > 0; k >>= 1) { if (k & 1) r *= b; b *= b; }
	return r;
}

/*
 * The read's bases projected on the reference: query base i sits at reference position
 * proj(i), soft clips continuing the alignment outwards and inserted bases at the next
 * reference base. Copies the bases with projection in [ws, we) to seq/qual; returns how
 * many, -1 on a malformed record, or -2 when there are more than SEG_MAX of them.
 */
static int32_t read_segment(const uint8_t *r, int32_t ws, int32_t we, uint8_t *seq, uint8_t *qual,
                            int32_t *first_proj, int32_t *max_shift)
{
	const uint32_t block = rd32(r);
	const int32_t pos = (int32_t)rd32(r + 8);
	const uint32_t name_len = r[12];
	const uint32_t n_cig = rd16(r + 16);
	const int32_t l_seq = (int32_t)rd32(r + 20);
	const uint32_t cig_off = 36 + name_len;
	const uint32_t seq_off = cig_off + 4 * n_cig;
	const uint32_t qual_off = seq_off + (uint32_t)((l_seq + 1) >> 1);
	if (l_seq < 0 || qual_off + (uint32_t)l_seq > block + 4) return -1;
	int32_t rp = pos, qp = 0, n = 0;
	int aligned = 0;
	/* shift: reference bases minus query bases consumed since the first base in the window */
	int32_t shift = 0, worst = 0;
	*first_proj = 0;
	for (uint32_t c = 0; c < n_cig; c++) {
		const uint32_t op_len = rd32(r + cig_off + 4 * c);
		const uint32_t op = op_len & 0xf;
		const int32_t len = (int32_t)(op_len >> 4);
		int32_t first_ref, step; /* projection of the op's first query base; 1 if it advances */
		if (op == 0 || op == 7 || op == 8) { first_ref = rp; step = 1; aligned = 1; }
		else if (op == 4) { first_ref = aligned ? rp : rp - len; step = 1; }
		else if (op == 1) { first_ref = rp; step = 0; }
		else {
			if (op == 2 || op == 3) {
				rp += len;
				if (n > 0 && rp < we) { shift += len; if (shift > worst) worst = shift; }
			}
			continue;
		}
		if (op == 1 && n > 0 && rp < we) { shift -= len; if (-shift > worst) worst = -shift; }
		if (qp + len > l_seq) return -1;
		for (int32_t t = 0; t < len; t++) {
			const int32_t x = first_ref + step * t;
			/* an inserted base belongs to the window when both its neighbours do */
			const int in = step ? (x >= ws && x < we) : (x > ws && x < we);
			if (in) {
				if (n == SEG_MAX) return -2;
				const int32_t qi = qp + t;
				seq[n] = nt16_base[(r[seq_off + (qi >> 1)] >> ((qi & 1) ? 0 : 4)) & 0xf];
				qual[n] = r[qual_off + qi];
				if (n == 0) *first_proj = x;
				n++;
			}
		}
		qp += len;
		if (op == 0 || op == 7 || op == 8) rp += len;
	}
	*max_shift = worst;
	return n;
}

/*
 * log10 P(seq | hap) by the forward algorithm (see the top of the file), over the band
 * j - i in [diag - band, diag + band] of the matrix: a read sits on the haplotype near
 * where its alignment put it, give or take the indels in play, so cells further away
 * hold nothing that matters and the band cuts the work about threefold. Not inlined: V8
 * moves a wasm function to its optimising tier only when it is entered again, and this one
 * is entered once per (read, haplotype), gc_realign once per region.
 */
__attribute__((noinline)) static double pair_hmm(const uint8_t *seq, const uint8_t *qual, int32_t m, const uint8_t *hap, int32_t n,
                       int32_t diag, int32_t band,
                       const double *p_match, const double *p_mis, double t_open, double t_ext, double *scratch)
{
	double *pm = scratch, *pi = pm + (n + 1), *pd = pi + (n + 1);
	double *cm = pd + (n + 1), *ci = cm + (n + 1), *cd = ci + (n + 1);
	const double t_mm = 1 - 2 * t_open, t_gm = 1 - t_ext;
	const double init = 1.0 / n;
	for (int32_t j = 0; j <= n; j++) { pm[j] = 0; pi[j] = 0; pd[j] = init; }
	pd[0] = 0;
	double log_scale = 0;
	int32_t last_lo = 1, last_hi = 0;
	for (int32_t i = 1; i <= m; i++) {
		const uint8_t b = seq[i - 1];
		uint32_t q = qual[i - 1];
		if (q > 60) q = 60;
		if (q < 6) q = 6;
		const double em_match = b < 4 ? p_match[q] : 0.25, em_mis = b < 4 ? p_mis[q] : 0.25;
		int32_t lo = i + diag - band, hi = i + diag + band;
		if (lo < 1) lo = 1;
		if (hi > n) hi = n;
		if (lo > hi) return -1000; /* the read lies off the haplotype */
		/* the cells beside the band are zero for this row and the next */
		cm[lo - 1] = 0; ci[lo - 1] = 0; cd[lo - 1] = 0;
		if (hi < n) { cm[hi + 1] = 0; ci[hi + 1] = 0; cd[hi + 1] = 0; }
		if (lo > 1) { cm[lo - 2] = 0; ci[lo - 2] = 0; cd[lo - 2] = 0; }
		double row = 0;
		for (int32_t j = lo; j <= hi; j++) {
			const uint8_t h = hap[j - 1];
			const double em = (h == b && b < 4) ? em_match : (h < 4 ? em_mis : 0.25);
			cm[j] = em * (t_mm * pm[j - 1] + t_gm * (pi[j - 1] + pd[j - 1]));
			ci[j] = t_open * pm[j] + t_ext * pi[j];
			cd[j] = t_open * cm[j - 1] + t_ext * cd[j - 1];
			row += cm[j] + ci[j];
		}
		if (row < 1e-200) {
			for (int32_t j = lo; j <= hi; j++) { cm[j] *= 1e200; ci[j] *= 1e200; cd[j] *= 1e200; }
			log_scale -= 200;
		}
		last_lo = lo; last_hi = hi;
		double *t;
		t = pm; pm = cm; cm = t;
		t = pi; pi = ci; ci = t;
		t = pd; pd = cd; cd = t;
	}
	double sum = 0;
	for (int32_t j = last_lo; j <= last_hi; j++) sum += pm[j] + pi[j];
	if (!(sum > 0)) return -1000; /* a mismatch the scale does not reach: as good as impossible */
	return log10_pos(sum) + log_scale;
}

GC_EXPORT(gc_realign)
int32_t gc_realign(const uint8_t *recs, const int32_t *off, const gc_site_t *sites, const gc_hap_t *haps,
                   const uint8_t *hap_seq, const gc_job_t *jobs, int32_t n_jobs, int32_t gap_open_q, int32_t gap_ext_q,
                   uint8_t *seg, double *scratch, double *out)
{
	double p_match[61], p_mis[61];
	for (int32_t q = 0; q <= 60; q++) {
		const double e = pow10_neg(q);
		p_match[q] = 1 - e;
		p_mis[q] = e / 3;
	}
	const double t_open = pow10_neg(gap_open_q), t_ext = pow10_neg(gap_ext_q);
	for (int32_t k = 0; k < n_jobs; k++) {
		const gc_job_t *jb = &jobs[k];
		const gc_site_t *s = &sites[jb->site];
		uint8_t *seq = seg, *qual = seg + SEG_MAX;
		const uint8_t *r = recs + off[jb->read];
		int32_t first_proj, max_shift;
		int32_t m = read_segment(r, s->ws, s->we, seq, qual, &first_proj, &max_shift);
		if (m == -1) return -1;
		if (m < 0) m = 0; /* a segment too long to hold says nothing here */
		/* column minus row of the first base on the reference haplotype (both 1-based) */
		const int32_t diag = first_proj - s->hs;
		const int32_t band = s->band + max_shift;
		double *o = out + jb->out;
		for (int32_t h = 0; h < s->n_hap; h++) {
			const gc_hap_t *hp = &haps[s->hap0 + h];
			o[h] = m == 0 ? 0 : pair_hmm(seq, qual, m, hap_seq + hp->off, hp->len, diag, band, p_match, p_mis, t_open, t_ext, scratch);
		}
	}
	return 0;
}
