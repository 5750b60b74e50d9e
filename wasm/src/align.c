/*
 * Banded affine-gap alignment with end clipping (scalar reference implementation).
 *
 * Cells (i, j): i query bases and j reference bases consumed. An alignment may start
 * at any reference base (free reference ends) and at query base 0 for free or at
 * query base i > 0 for the 5' clipping penalty; it may end before the last query base
 * for the 3' clipping penalty. Band in diagonal coordinates b = j - i - dlo, W wide.
 *   H(i,j) = max(start(i), H(i-1,j-1) + s(q,r), E(i,j), F(i,j))
 *   E(i,j) = max(H(i,j-1) - o - e, E(i,j-1) - e)     deletion (reference consumed)
 *   F(i,j) = max(H(i-1,j) - o - e, F(i-1,j) - e)     insertion (query consumed)
 * One direction byte per cell drives the traceback.
 */
#include "gl.h"

#define NEG (-0x20000000)
enum { D_START = 0, D_DIAG = 1, D_E = 2, D_F = 3, D_EEXT = 4, D_FEXT = 8 };

static int traceback(const uint8_t *q, int L, const uint8_t *ref, int wlen, int dlo, int W, const uint8_t *dir,
                     int bi, int bj, const gl_opts_t *o, const int8_t *mat, gl_arena_t *a, gl_hit_t *hit, uint32_t *rbeg);

static uint32_t *push_op(uint32_t *c, int *n, int op, int len) {
	if (len <= 0) return c;
	if (*n > 0 && (c[*n - 1] & 0xf) == (uint32_t)op) c[*n - 1] += (uint32_t)len << 4;
	else c[(*n)++] = (uint32_t)len << 4 | (uint32_t)op;
	return c;
}

static int extend_scalar(const uint8_t *q, int L, const uint8_t *ref, int wlen, int dlo, int dhi,
                         const gl_opts_t *o, gl_arena_t *a, gl_hit_t *hit, uint32_t *rbeg) {
	const int W = dhi - dlo + 1, oe = o->o + o->e, e = o->e;
	if (W <= 0 || L <= 0 || wlen <= 0) return GL_ERR_BAD_INPUT;
	uint32_t mark = a->used;
	int32_t *H = (int32_t *)gl_alloc(a, 4u * (uint32_t)(W + 2));
	int32_t *F = (int32_t *)gl_alloc(a, 4u * (uint32_t)(W + 2));
	uint8_t *dir = (uint8_t *)gl_alloc(a, (uint32_t)(L + 1) * (uint32_t)W);
	if (!H || !F || !dir) return GL_ERR_ARENA_FULL;
	int8_t mat[25];
	for (int x = 0; x < 5; ++x)
		for (int y = 0; y < 5; ++y) mat[x * 5 + y] = (int8_t)(x == 4 || y == 4 ? -1 : x == y ? o->a : -o->b);
	int best = NEG, bi = 0, bj = 0;
	/* row 0: start anywhere on the reference */
	for (int b = 0; b < W; ++b) {
		int j = dlo + b;
		H[b] = (j >= 0 && j <= wlen) ? 0 : NEG;
		F[b] = NEG;
		dir[b] = D_START;
	}
	H[W] = F[W] = NEG; /* b + 1 beyond the band */
	if (L > 0) { /* ending at row 0 means clipping everything: never reported */ }
	for (int i = 1; i <= L; ++i) {
		const int qc = q[i - 1];
		const int8_t *mrow = mat + qc * 5;
		const int start = -o->clip5;
		uint8_t *d = dir + (uint32_t)i * (uint32_t)W;
		int Ecur = NEG, Hleft = NEG;
		int jlo = i + dlo;
		for (int b = 0; b < W; ++b) {
			int j = jlo + b;
			/* F from (i-1, j): band index b + 1 of the previous row */
			int hup = H[b + 1], fup = F[b + 1];
			int f1 = hup - oe, f2 = fup - e, fb = f1 >= f2 ? f1 : f2;
			uint8_t db = f1 >= f2 ? 0 : D_FEXT;
			if (j < 0 || j > wlen) {
				H[b] = NEG; F[b] = NEG; d[b] = D_START; Hleft = NEG; Ecur = NEG;
				continue;
			}
			int e1 = Hleft - oe, e2 = Ecur - e;
			int eb = e1 >= e2 ? e1 : e2;
			if (e2 > e1) db |= D_EEXT;
			int diag = (j >= 1 && H[b] > NEG) ? H[b] + mrow[ref[j - 1]] : NEG;
			int h = start, src = D_START;
			if (diag > h) { h = diag; src = D_DIAG; }
			if (eb > h) { h = eb; src = D_E; }
			if (fb > h) { h = fb; src = D_F; }
			H[b] = h; F[b] = fb; Ecur = eb; Hleft = h;
			d[b] = db | (uint8_t)src;
			int fin = i < L ? h - o->clip3 : h;
			if (fin > best) { best = fin; bi = i; bj = j; }
		}
	}
	if (best <= NEG / 2) { a->used = mark; return GL_ERR_BAD_INPUT; }
	return traceback(q, L, ref, wlen, dlo, W, dir, bi, bj, o, mat, a, hit, rbeg);
}

/* Traceback from the best cell (bi, bj) through the direction bytes; builds the CIGAR. */
static int traceback(const uint8_t *q, int L, const uint8_t *ref, int wlen, int dlo, int W, const uint8_t *dir,
                     int bi, int bj, const gl_opts_t *o, const int8_t *mat, gl_arena_t *a, gl_hit_t *hit, uint32_t *rbeg) {
	const int e = o->e;
	uint32_t *tmp = (uint32_t *)gl_alloc(a, 4u * (uint32_t)(L + wlen + 4));
	if (!tmp) return GL_ERR_ARENA_FULL;
	int nt = 0, i = bi, j = bj, state = 0; /* 0 H, 2 E, 3 F */
	int raw = 0;
	while (i > 0) {
		int b = j - i - dlo;
		uint8_t db = dir[(uint32_t)i * (uint32_t)W + (uint32_t)b];
		if (state == 0) {
			int src = db & 3;
			if (src == D_START) break;
			if (src == D_DIAG) { push_op(tmp, &nt, 0, 1); raw += mat[q[i - 1] * 5 + ref[j - 1]]; --i; --j; continue; }
			state = src;
		}
		if (state == D_E) {
			push_op(tmp, &nt, 2, 1); raw -= e;
			if (!(db & D_EEXT)) { state = 0; raw -= o->o; }
			--j;
		} else {
			push_op(tmp, &nt, 1, 1); raw -= e;
			if (!(db & D_FEXT)) { state = 0; raw -= o->o; }
			--i;
		}
	}
	hit->qb = i; hit->qe = bi;
	*rbeg = (uint32_t)j;
	hit->gend = (uint32_t)bj; /* window-relative; the caller adds the window start */
	hit->as = raw;
	hit->score = raw - (i > 0 ? o->clip5 : 0) - (bi < L ? o->clip3 : 0);
	/* reverse into the final CIGAR with soft clips (in the scratch arena: the caller copies it) */
	uint32_t *cig = (uint32_t *)gl_alloc(a, 4u * (uint32_t)(nt + 2));
	if (!cig) return GL_ERR_ARENA_FULL;
	int n = 0;
	const uint32_t *src = tmp;
	if (i > 0) cig[n++] = (uint32_t)i << 4 | 4u;
	for (int t = nt - 1; t >= 0; --t) cig[n++] = src[t];
	if (bi < L) cig[n++] = (uint32_t)(L - bi) << 4 | 4u;
	hit->cigar = cig; hit->n_cigar = n;
	return 0;
}

/*
 * The same recurrence with wasm SIMD128, eight 16-bit cells of one row at a time.
 * The horizontal gap (E) is a running maximum along the row; with affine costs
 *   E[b] = max_{b' < b} (H0[b'] - o - e (b - b'))   (H0: H before E is considered)
 * = prefix-max(H0[b'] + e b') - o - e b, computed with in-register lane shifts.
 * Direction bytes and the best cell are exactly those of extend_scalar (same tie
 * rules), so both give identical alignments; used when scores fit in 16 bits.
 */
#include <wasm_simd128.h>

#define NEG16 (-16000)

/* lanes move up by k (lane i gets lane i - k); the k lowest lanes get the fill vector's lanes */
static inline v128_t shl1(v128_t v, v128_t fill) {
	return wasm_i8x16_shuffle(fill, v, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29);
}
static inline v128_t shl2(v128_t v, v128_t fill) {
	return wasm_i8x16_shuffle(fill, v, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
}
static inline v128_t shl4(v128_t v, v128_t fill) {
	return wasm_i8x16_shuffle(fill, v, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23);
}

static int extend_simd(const uint8_t *q, int L, const uint8_t *ref, int wlen, int dlo, int dhi,
                       const gl_opts_t *o, gl_arena_t *a, gl_hit_t *hit, uint32_t *rbeg) {
	const int W = dhi - dlo + 1, WV = (W + 7) & ~7, oe = o->o + o->e, e = o->e;
	uint32_t mark = a->used;
	int16_t *Hp = (int16_t *)gl_alloc(a, 2u * (uint32_t)(WV + 16));
	int16_t *Hc = (int16_t *)gl_alloc(a, 2u * (uint32_t)(WV + 16));
	int16_t *Fp = (int16_t *)gl_alloc(a, 2u * (uint32_t)(WV + 16));
	int16_t *Fc = (int16_t *)gl_alloc(a, 2u * (uint32_t)(WV + 16));
	uint8_t *dir = (uint8_t *)gl_alloc(a, (uint32_t)(L + 1) * (uint32_t)WV + 16);
	if (!Hp || !Hc || !Fp || !Fc || !dir) return GL_ERR_ARENA_FULL;
	int8_t mat[25];
	for (int x = 0; x < 5; ++x)
		for (int y = 0; y < 5; ++y) mat[x * 5 + y] = (int8_t)(x == 4 || y == 4 ? -1 : x == y ? o->a : -o->b);
	for (int b = 0; b < WV + 16; ++b) {
		int j = dlo + b;
		Hp[b] = (b < W && j >= 0 && j <= wlen) ? 0 : NEG16;
		Fp[b] = NEG16;
		Hc[b] = Fc[b] = NEG16;
	}
	for (int b = 0; b < WV; ++b) dir[b] = D_START;
	const v128_t vneg = wasm_i16x8_splat(NEG16), voe = wasm_i16x8_splat((int16_t)oe), ve = wasm_i16x8_splat((int16_t)e);
	const v128_t vo = wasm_i16x8_splat((int16_t)o->o), vstart = wasm_i16x8_splat((int16_t)-o->clip5);
	const v128_t vlane = wasm_i16x8_make(0, 1, 2, 3, 4, 5, 6, 7);
	const v128_t vmatch = wasm_i16x8_splat((int16_t)o->a), vmis = wasm_i16x8_splat((int16_t)-o->b), vn = wasm_i16x8_splat(-1);
	const v128_t vfour = wasm_i16x8_splat(4), vzero = wasm_i16x8_splat(0), vwlen = wasm_i16x8_splat((int16_t)wlen);
	const v128_t v1 = wasm_i16x8_splat(1), v2 = wasm_i16x8_splat(2), v3 = wasm_i16x8_splat(3);
	const v128_t v4 = wasm_i16x8_splat(D_EEXT), v8 = wasm_i16x8_splat(D_FEXT);
	int best = NEG16, bi = 0, bj = 0;
	for (int i = 1; i <= L; ++i) {
		const int qc = q[i - 1];
		const v128_t vq = wasm_i16x8_splat((int16_t)qc);
		const int jlo = i + dlo;
		const int pen3 = i < L ? o->clip3 : 0;
		uint8_t *d = dir + (uint32_t)i * (uint32_t)WV;
		v128_t carryG = vneg, lastH = vneg, lastE = vneg; /* lane 7 holds the previous block's last cell */
		v128_t rowmax = vneg;
		for (int b = 0; b < WV; b += 8) {
			v128_t hp = wasm_v128_load(Hp + b), hp1 = wasm_v128_load(Hp + b + 1), fp1 = wasm_v128_load(Fp + b + 1);
			v128_t vb = wasm_i16x8_add(wasm_i16x8_splat((int16_t)b), vlane);
			v128_t vj = wasm_i16x8_add(vb, wasm_i16x8_splat((int16_t)jlo));
			v128_t valid = wasm_v128_and(wasm_i16x8_ge(vj, vzero), wasm_i16x8_le(vj, vwlen));
			valid = wasm_v128_and(valid, wasm_i16x8_lt(vb, wasm_i16x8_splat((int16_t)W)));
			/* reference codes ref[j - 1], loaded only where 1 <= j <= wlen */
			v128_t vr;
			if (jlo + b >= 1 && jlo + b + 7 <= wlen) {
				vr = wasm_u16x8_load8x8(ref + jlo + b - 1);
			} else {
				int16_t rc[8];
				for (int t = 0; t < 8; ++t) {
					int j = jlo + b + t;
					rc[t] = (j >= 1 && j <= wlen) ? ref[j - 1] : 4;
				}
				vr = wasm_v128_load(rc);
			}
			v128_t isn = wasm_v128_or(wasm_i16x8_eq(vr, vfour), wasm_i16x8_eq(vq, vfour));
			v128_t sc = wasm_v128_bitselect(vn, wasm_v128_bitselect(vmatch, vmis, wasm_i16x8_eq(vr, vq)), isn);
			v128_t dvalid = wasm_v128_and(valid, wasm_v128_and(wasm_i16x8_ge(vj, v1), wasm_i16x8_gt(hp, wasm_i16x8_splat(NEG16 / 2))));
			v128_t diag = wasm_v128_bitselect(wasm_i16x8_add_sat(hp, sc), vneg, dvalid);
			v128_t f1 = wasm_i16x8_sub_sat(hp1, voe), f2 = wasm_i16x8_sub_sat(fp1, ve);
			v128_t f = wasm_i16x8_max(f1, f2);
			v128_t fext = wasm_i16x8_gt(f2, f1);
			v128_t m1 = wasm_i16x8_max(vstart, diag);
			v128_t h0 = wasm_v128_bitselect(wasm_i16x8_max(m1, f), vneg, valid);
			/* E: exclusive prefix max of G = H0 + e b */
			v128_t ebv = wasm_i16x8_mul(vb, ve);
			v128_t g = wasm_i16x8_add_sat(h0, ebv);
			g = wasm_i16x8_max(g, shl1(g, vneg));
			g = wasm_i16x8_max(g, shl2(g, vneg));
			g = wasm_i16x8_max(g, shl4(g, vneg));
			g = wasm_i16x8_max(g, wasm_i16x8_splat(wasm_i16x8_extract_lane(carryG, 7)));
			v128_t excl = shl1(g, carryG);
			carryG = g;
			v128_t E = wasm_i16x8_sub_sat(wasm_i16x8_sub_sat(excl, vo), ebv);
			E = wasm_v128_bitselect(wasm_i16x8_max(E, vneg), vneg, valid);
			v128_t h = wasm_v128_bitselect(wasm_i16x8_max(h0, E), vneg, valid);
			f = wasm_v128_bitselect(wasm_i16x8_max(f, vneg), vneg, valid);
			/* direction: start < diag < E < F on ties, as in extend_scalar */
			v128_t isdiag = wasm_i16x8_gt(diag, vstart);
			v128_t isE = wasm_i16x8_gt(E, m1);
			v128_t isF = wasm_i16x8_gt(f, wasm_i16x8_max(m1, E));
			v128_t src = wasm_v128_bitselect(v3, wasm_v128_bitselect(v2, wasm_v128_and(isdiag, v1), isE), isF);
			v128_t hl = shl1(h, lastH), el = shl1(E, lastE);
			v128_t eext = wasm_i16x8_gt(wasm_i16x8_sub_sat(el, ve), wasm_i16x8_sub_sat(hl, voe));
			lastH = h; lastE = E;
			v128_t dv = wasm_v128_or(src, wasm_v128_or(wasm_v128_and(eext, v4), wasm_v128_and(fext, v8)));
			dv = wasm_v128_and(dv, valid);
			v128_t d8 = wasm_u8x16_narrow_i16x8(dv, dv);
			wasm_v128_store64_lane(d + b, d8, 0);
			wasm_v128_store(Hc + b, h);
			wasm_v128_store(Fc + b, f);
			rowmax = wasm_i16x8_max(rowmax, h);
		}
		/* best cell: first (row-major) maximum of h - pen3 */
		int16_t rm[8];
		wasm_v128_store(rm, rowmax);
		int m = rm[0];
		for (int t = 1; t < 8; ++t) if (rm[t] > m) m = rm[t];
		if (m > NEG16 / 2 && m - pen3 > best) {
			for (int b = 0; b < W; ++b)
				if (Hc[b] == m) { best = m - pen3; bi = i; bj = jlo + b; break; }
		}
		int16_t *t;
		t = Hp; Hp = Hc; Hc = t;
		t = Fp; Fp = Fc; Fc = t;
	}
	if (best <= NEG16 / 2) { a->used = mark; return GL_ERR_BAD_INPUT; }
	return traceback(q, L, ref, wlen, dlo, WV, dir, bi, bj, o, mat, a, hit, rbeg);
}

int gl_extend(const uint8_t *q, int L, const uint8_t *ref, int wlen, int dlo, int dhi,
              const gl_opts_t *o, gl_arena_t *a, gl_hit_t *hit, uint32_t *rbeg) {
	int W = dhi - dlo + 1;
	/* 16-bit lanes: scores, e * band index and coordinates must stay far from saturation */
	int fits = W > 0 && L > 0 && wlen > 0 && L * o->a + (W + 8) * o->e < 12000 && wlen + L + W < 12000 &&
	           -dlo < 12000 && o->clip5 < 1000 && o->o + o->e < 1000 && o->b < 1000;
	if (o->simd && fits) return extend_simd(q, L, ref, wlen, dlo, dhi, o, a, hit, rbeg);
	return extend_scalar(q, L, ref, wlen, dlo, dhi, o, a, hit, rbeg);
}
