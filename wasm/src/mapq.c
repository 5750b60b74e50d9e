/* Mapping quality from the best and the best suboptimal score (in the spirit of BWA-MEM). */
#include "gl.h"

/* Natural logarithm without libm: x = m * 2^ex, log m = 2 atanh((m - 1) / (m + 1)). */
double gl_log(double x) {
	if (!(x > 0)) return -1e300;
	union { double d; uint64_t u; } v = { x };
	int ex = (int)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
	double m = v.d;
	if (m > 1.41421356237) { m *= 0.5; ++ex; }
	double t = (m - 1) / (m + 1), t2 = t * t;
	double s = t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 / 11)))));
	return 2 * s + ex * 0.69314718055994530942;
}

/*
 * s1: best score, s2: best score elsewhere (0 when none), L: read length.
 * A hit elsewhere with a score close to the best makes the placement uncertain; the
 * length factor scales the score gap so that 150 bp reads saturate at 60 for a clear
 * gap, and divergent alignments (low identity) are discounted.
 */
int gl_mapq(int s1, int s2, int L, const gl_opts_t *o) {
	if (s1 <= 0) return 0;
	int floor_sub = 19 * o->a;
	int sub = s2 > floor_sub ? s2 : floor_sub;
	if (sub >= s1) return 0;
	double l = L > 1 ? L : 1;
	double tmp = l < 50 ? 1.0 : 3.912 / gl_log(l);
	double q = 6.02 * (double)(s1 - sub) / o->a * tmp * tmp;
	double identity = 1.0 - (l * o->a - s1) / (double)(o->a + o->b) / l;
	if (identity < 0.95) {
		double f = (identity - 0.75) / 0.2;
		q *= f > 0 ? f * f : 0;
	}
	int mq = (int)(q + 0.499);
	return mq > 60 ? 60 : mq < 0 ? 0 : mq;
}
