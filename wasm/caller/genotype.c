/*
 * Diploid genotype likelihoods, posteriors, QUAL, GQ and PL for a batch of sites: the C
 * twin of src/call/genotype.ts (callSite, snvLogLiks, readLogLiks), which stays as the
 * reference the tests hold it to, number for number. To give the same bits, it takes
 * log10 and pow from the host (Math.log10, Math.pow) and adds in the same order as the
 * TypeScript; the work per site is tiny, so the imported calls cost nothing that shows.
 */
#include "caller.h"

__attribute__((import_module("env"), import_name("log10"))) double gc_log10(double x);
__attribute__((import_module("env"), import_name("pow"))) double gc_pow(double x, double y);

#define MAX_G 10 /* genotypes of up to 4 alleles */

static double log10_sum_exp(const double *v, int32_t n, int32_t skip)
{
	double m = -__builtin_inf();
	for (int32_t i = 0; i < n; i++) if (i != skip && v[i] > m) m = v[i];
	if (m == -__builtin_inf()) return m;
	double s = 0;
	for (int32_t i = 0; i < n; i++) if (i != skip) s += gc_pow(10, v[i] - m);
	return m + gc_log10(s);
}

/* log10 priors of the genotypes of n alleles (genotypePriors in genotype.ts). */
static void priors(int32_t n, double theta, double *out)
{
	const int32_t n_alt = n - 1 > 1 ? n - 1 : 1;
	double p[MAX_G];
	int32_t g = 0;
	for (int32_t k = 0; k < n; k++) {
		for (int32_t j = 0; j <= k; j++, g++) {
			if (j == 0 && k == 0) p[g] = 0;
			else if (j == 0) p[g] = theta / n_alt;
			else if (j == k) p[g] = theta / (2 * n_alt);
			else p[g] = theta * theta;
		}
	}
	double rest = 0;
	for (int32_t i = 1; i < g; i++) rest += p[i];
	p[0] = 1 - rest;
	for (int32_t i = 0; i < g; i++) out[i] = gc_log10(p[i]);
}

static inline double js_round(double x) { return __builtin_floor(x + 0.5); }

GC_EXPORT(gc_genotype)
int32_t gc_genotype(const gc_gsite_t *sites, int32_t n_sites, int32_t n_samples, const double *data, int32_t *out, double *qual)
{
	for (int32_t si = 0; si < n_sites; si++) {
		const gc_gsite_t *s = &sites[si];
		const int32_t n = s->n_alleles;
		if (n < 1 || n > 4) return -1;
		const int32_t ng = n * (n + 1) / 2;
		double prior[MAX_G];
		priors(n, s->theta, prior);
		const double *d = data + s->data;
		int32_t *o = out + s->out;
		double log_p00 = 0;
		for (int32_t sm = 0; sm < n_samples; sm++) {
			double ll[MAX_G];
			if (s->kind == 0) {
				/* snvLogLiks: s1, s2, s3 of the four bases */
				const double *s1 = d, *s2 = d + 4, *s3 = d + 8;
				double sum_s2 = 0;
				for (int32_t x = 0; x < 4; x++) sum_s2 += s2[x];
				int32_t g = 0;
				for (int32_t k = 0; k < n; k++) {
					for (int32_t j = 0; j <= k; j++, g++) {
						const int32_t a = s->alleles[j], b = s->alleles[k];
						if (a == b) ll[g] = s1[a] + sum_s2 - s2[a];
						else ll[g] = s3[a] + s3[b] + sum_s2 - s2[a] - s2[b];
					}
				}
				d += 12;
			} else {
				/* readLogLiks: reads' allele log-likelihoods, floored at best - cap */
				const int32_t reads = (int32_t)d[0];
				d++;
				for (int32_t g = 0; g < ng; g++) ll[g] = 0;
				for (int32_t r = 0; r < reads; r++, d += n + 1) {
					double best = d[0];
					for (int32_t a = 1; a < n; a++) if (d[a] > best) best = d[a];
					const double floor = best - d[n];
					double p[4];
					for (int32_t a = 0; a < n; a++) p[a] = gc_pow(10, (d[a] > floor ? d[a] : floor) - best);
					int32_t g = 0;
					for (int32_t b = 0; b < n; b++)
						for (int32_t a = 0; a <= b; a++, g++) ll[g] += gc_log10(0.5 * p[a] + 0.5 * p[b]) + best;
				}
			}
			/* callSite */
			double post[MAX_G];
			for (int32_t g = 0; g < ng; g++) post[g] = ll[g] + prior[g];
			const double z = log10_sum_exp(post, ng, -1);
			int32_t best = 0;
			for (int32_t g = 1; g < ng; g++) if (post[g] > post[best]) best = g;
			log_p00 += post[0] - z;
			const double log_err = log10_sum_exp(post, ng, best) - z;
			double gq = js_round(-10 * log_err);
			gq = gq < 0 ? 0 : gq > 99 ? 99 : gq;
			double max_ll = ll[0];
			for (int32_t g = 1; g < ng; g++) if (ll[g] > max_ll) max_ll = ll[g];
			o[0] = best;
			o[1] = (int32_t)gq;
			for (int32_t g = 0; g < ng; g++) {
				const double pl = js_round(-10 * (ll[g] - max_ll));
				o[2 + g] = pl > 65535 ? 65535 : (int32_t)pl;
			}
			o += 2 + ng;
		}
		const double q = -10 * log_p00;
		qual[si] = q < 0 ? 0 : q > 999 ? 999 : q;
	}
	return 0;
}
