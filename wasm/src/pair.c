/*
 * Per-read mapping (seed, chain, extend) and paired-end resolution: insert size per
 * batch, pairing score, mate rescue, flags, mate fields and mapping qualities.
 */
#include "gl.h"

static int hit_copy(gl_arena_t *keep, gl_hit_t *h) {
	uint32_t *c = (uint32_t *)gl_alloc(keep, 4u * (uint32_t)h->n_cigar);
	if (!c) return GL_ERR_ARENA_FULL;
	gl_memcpy(c, h->cigar, 4u * (uint32_t)h->n_cigar);
	h->cigar = c;
	return 0;
}

/* Aligns q (already in the hit's orientation) to the global window [ws, we) with band [dlo, dhi]. */
static int extend_window(const gl_index_t *idx, const gl_opts_t *o, const uint8_t *q, int L, int rev, int tid,
                         int64_t ws, int64_t we, int dlo, int dhi, gl_arena_t *scratch, gl_hit_t *h) {
	const gl_contig_t *c = &gl_ctg(idx)[tid];
	int64_t cs = c->start, ce = (int64_t)c->start + c->len;
	int64_t ws2 = ws < cs ? cs : ws, we2 = we > ce ? ce : we;
	if (we2 - ws2 < 1) return GL_ERR_BAD_INPUT;
	dlo -= (int)(ws2 - ws); dhi -= (int)(ws2 - ws);
	if (dlo < -L) dlo = -L;
	if (dhi > (int)(we2 - ws2)) dhi = (int)(we2 - ws2);
	if (dhi < dlo) return GL_ERR_BAD_INPUT;
	uint32_t rb = 0;
	h->cov = 0; h->alt_cov = 0; h->alt_diag = 0; h->tmm = 7;
	int r = gl_extend(q, L, gl_seq(idx) + ws2, (int)(we2 - ws2), dlo, dhi, o, scratch, h, &rb);
	if (r < 0) return r;
	h->gend = (uint32_t)ws2 + h->gend;
	h->gstart = (uint32_t)ws2 + rb;
	h->rev = rev; h->tid = tid;
	return 0;
}

static void sort_hits(gl_hit_t *h, int n) {
	for (int i = 1; i < n; ++i) {
		gl_hit_t t = h[i];
		int j = i - 1;
		while (j >= 0 && (h[j].score < t.score || (h[j].score == t.score && h[j].gstart > t.gstart))) { h[j + 1] = h[j]; --j; }
		h[j + 1] = t;
	}
}

static void hits_summary(gl_hits_t *out) {
	out->n_best = 0; out->sub = 0;
	if (out->n == 0) return;
	for (int i = 0; i < out->n && out->h[i].score == out->h[0].score; ++i) ++out->n_best;
	if (out->n > 1) out->sub = out->h[1].score;
}

/* Same placement: same strand and the alignments share their first or last diagonal
 * (two chains of one read with an indel extend to the same alignment), as opposed to a
 * shifted placement inside a tandem repeat (all diagonals differ). */
static int same_place(const gl_hit_t *a, const gl_hit_t *b) {
	if (a->rev != b->rev || a->tid != b->tid) return 0;
	return (int64_t)a->gstart - a->qb == (int64_t)b->gstart - b->qb || (int64_t)a->gend - a->qe == (int64_t)b->gend - b->qe;
}

/*
 * Fast path for a chain on one diagonal: the best gapless alignment on it (with clipping
 * penalties). Accepted only when it is clearly what the DP would find: few mismatches
 * and at most a few clipped bases (an indel outside the seeds shows as a long clip or
 * a run of mismatches). Returns 1 and fills h when accepted.
 */
static int ungapped(const gl_index_t *idx, const gl_opts_t *o, const uint8_t *q, int L, int rev, int64_t d,
                    gl_arena_t *scratch, gl_hit_t *h) {
	int64_t mid = d + L / 2;
	if (mid < 0 || mid >= (int64_t)idx->seq_len) return 0;
	int tid = gl_tid_of(idx, (uint32_t)mid);
	const gl_contig_t *c = &gl_ctg(idx)[tid];
	if (d < (int64_t)c->start || d + L > (int64_t)c->start + c->len) return 0;
	const uint8_t *r = gl_seq(idx) + d;
	/* best [qb, qe): maximise P[qe] - P[qb] - clip5*(qb>0) - clip3*(qe<L) */
	int P = 0, best = -0x40000000, bqb = 0, bqe = 0, minv = 0, minat = 0;
	for (int i = 0; i < L; ++i) {
		int startv = P + (i > 0 ? o->clip5 : 0); /* we minimise P[qb] + clip5*(qb>0) */
		if (i == 0 || startv < minv) { minv = startv; minat = i; }
		int x = q[i], y = r[i];
		P += (x > 3 || y > 3) ? -1 : x == y ? o->a : -o->b;
		int endv = P - (i + 1 < L ? o->clip3 : 0) - minv;
		if (endv > best) { best = endv; bqb = minat; bqe = i + 1; }
	}
	if (bqb > 5 || L - bqe > 5) return 0;
	int mm = 0, raw = 0;
	for (int i = bqb; i < bqe; ++i) {
		int x = q[i], y = r[i];
		if (x > 3 || y > 3 || x != y) ++mm;
		raw += (x > 3 || y > 3) ? -1 : x == y ? o->a : -o->b;
	}
	if (mm > 3) return 0;
	uint32_t *cig = (uint32_t *)gl_alloc(scratch, 12);
	if (!cig) return 0;
	int n = 0;
	if (bqb > 0) cig[n++] = (uint32_t)bqb << 4 | 4u;
	cig[n++] = (uint32_t)(bqe - bqb) << 4;
	if (bqe < L) cig[n++] = (uint32_t)(L - bqe) << 4 | 4u;
	h->cigar = cig; h->n_cigar = n;
	h->qb = bqb; h->qe = bqe;
	h->gstart = (uint32_t)(d + bqb); h->gend = (uint32_t)(d + bqe);
	h->as = raw; h->score = best;
	h->rev = rev; h->tid = tid;
	h->cov = 0; h->alt_cov = 0; h->alt_diag = 0; h->tmm = 7;
	return 1;
}

/* ---- the reference through R: computed here (direct) or an answer of a part (replay) ---- */

void gl_queue(gl_ref_t *R, const gl_req_t *rq) {
	R->pending = 1;
	if (R->n_reqs < R->cap_reqs) R->reqs[R->n_reqs++] = *rq;
	else R->overflow = 1;
}

/* The answer of kind to read with key (rev, tid, a, b, c, d), or 0. */
static const gl_req_t *answer(const gl_ref_t *R, int kind, int read, int rev, int tid, int64_t a, int64_t b, int c, int d) {
	for (int t = R->by_read[read]; t < R->by_read[read + 1]; ++t) {
		const gl_req_t *x = &R->cache[R->order[t]];
		if (x->kind == kind && x->rev == rev && x->tid == tid && x->a == a && x->b == b && x->c == c && x->d == d) return x;
	}
	return 0;
}

static void answer_hit(const gl_ref_t *R, const gl_req_t *x, gl_hit_t *h) {
	const uint8_t *p = R->pool + x->data;
	gl_memcpy(h, p, sizeof(gl_hit_t));
	h->cigar = (uint32_t *)(uintptr_t)(p + sizeof(gl_hit_t));
}

/* The hit a chain extends to (0), none (< 0) or GL_PENDING. */
static int chain_hit(gl_ref_t *R, const gl_opts_t *o, int read, const gl_chain_t *c, int tid, const uint8_t *q, int L,
                     gl_arena_t *scratch, gl_hit_t *h) {
	if (R->idx) {
		int64_t ws = c->dmin - o->band, we = c->dmax + L + o->band;
		if (c->dmin == c->dmax && ungapped(R->idx, o, q, L, c->rev, c->dmin, scratch, h)) return 0;
		return extend_window(R->idx, o, q, L, c->rev, tid, ws, we, 0, (int)(c->dmax - c->dmin) + 2 * o->band, scratch, h) < 0 ? -1 : 0;
	}
	const gl_req_t *x = answer(R, GL_REQ_CHAIN, read, c->rev, tid, c->dmin, c->dmax, 0, 0);
	if (!x) {
		gl_req_t rq = { GL_REQ_CHAIN, read, c->rev, tid, c->dmin, c->dmax, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
		gl_queue(R, &rq);
		return GL_PENDING;
	}
	/* the direct path's scratch use: it fails where any of its allocations would */
	if (scratch->oom || (uint64_t)scratch->used + x->peak > scratch->cap) { scratch->oom = 1; return -1; }
	scratch->used += x->net;
	if (x->status < 0) return -1;
	answer_hit(R, x, h);
	return 0;
}

/* Banded DP of q against [ws, we) of contig tid (0), nothing (< 0) or GL_PENDING. */
static int window_hit(gl_ref_t *R, const gl_opts_t *o, int read, const uint8_t *q, int L, int rev, int tid,
                      int64_t ws, int64_t we, int dlo, int dhi, gl_arena_t *scratch, gl_hit_t *h) {
	if (R->idx) return extend_window(R->idx, o, q, L, rev, tid, ws, we, dlo, dhi, scratch, h) < 0 ? -1 : 0;
	const gl_req_t *x = answer(R, GL_REQ_WINDOW, read, rev, tid, ws, we, dlo, dhi);
	if (!x) {
		gl_req_t rq = { GL_REQ_WINDOW, read, rev, tid, ws, we, dlo, dhi, 0, 0, 0, 0, 0, 0, 0, 0 };
		gl_queue(R, &rq);
		return GL_PENDING;
	}
	if (x->status < 0) return -1;
	answer_hit(R, x, h);
	return 0;
}

static int anchors(gl_ref_t *R, int read, const uint8_t *fwd, int L, int max_occ, gl_arena_t *scratch, uint64_t **anc) {
	return R->idx ? gl_collect_anchors(R->idx, fwd, L, max_occ, scratch, anc) : gl_seed_merge(R, read, L, max_occ, scratch, anc);
}

int gl_map_read(gl_ref_t *R, const gl_opts_t *o, int read, const uint8_t *fwd, const uint8_t *rc, int L,
                gl_arena_t *keep, gl_arena_t *scratch, gl_hits_t *out) {
	out->n = 0; out->h = 0; out->n_best = 0; out->sub = 0;
	scratch->used = 0; scratch->oom = 0;
	uint64_t *anc;
	gl_chain_t *ch;
	int na = anchors(R, read, fwd, L, o->max_occ, scratch, &anc);
	if (na < 0) return na;
	int nc = na > 0 ? gl_chain(anc, na, L, R->k, o, scratch, &ch) : 0;
	if (nc < 0) return nc;
	if (nc == 0) { /* every seed too repetitive (inside a long tandem array): retry with all but the worst */
		scratch->used = 0; scratch->oom = 0;
		na = anchors(R, read, fwd, L, o->max_occ * 20, scratch, &anc);
		if (na <= 0) return na;
		nc = gl_chain(anc, na, L, R->k, o, scratch, &ch);
		if (nc <= 0) return nc;
	}
	int next = nc < o->max_ext ? nc : o->max_ext;
	gl_hit_t *hs = (gl_hit_t *)gl_alloc(scratch, (uint32_t)next * sizeof(gl_hit_t));
	if (!hs) return GL_ERR_ARENA_FULL;
	int nh = 0, tried = 0, pending = 0;
	for (int i = 0; i < next; ++i) {
		const gl_chain_t *c = &ch[i];
		if (c->score * 2 < ch[0].score && i >= 2) break; /* far weaker than the best chain */
		tried = i + 1;
		int64_t mid = c->dmin + L / 2;
		if (mid < 0) mid = 0;
		if (mid >= (int64_t)R->seq_len) mid = R->seq_len - 1;
		int tid = gl_tid_in(R->ctg, R->n_contigs, (uint32_t)mid);
		gl_hit_t h;
		int r = chain_hit(R, o, read, c, tid, c->rev ? rc : fwd, L, scratch, &h);
		if (r == GL_PENDING) pending = 1;
		if (r < 0) continue;
		if (h.as <= 0) continue;
		h.cov = c->score;
		int dup = 0;
		for (int j = 0; j < nh; ++j)
			if (same_place(&hs[j], &h)) { if (h.score > hs[j].score) hs[j] = h; dup = 1; break; }
		if (!dup) hs[nh++] = h;
	}
	if (pending) return GL_PENDING;
	if (scratch->oom) return GL_ERR_ARENA_FULL;
	/* the best chain elsewhere (e.g. a shifted placement in a tandem repeat) for each hit */
	for (int j = 0; j < nh; ++j) {
		gl_hit_t *h = &hs[j];
		int64_t d0 = (int64_t)h->gstart - h->qb, d1 = (int64_t)h->gend - h->qe;
		int64_t lo = (d0 < d1 ? d0 : d1) - 1, hi = (d0 > d1 ? d0 : d1) + 1;
		h->alt_cov = 0; h->alt_diag = 0;
		for (int i = tried; i < nc && i < tried + 64; ++i) { /* chains not extended: their scores are unknown */
			const gl_chain_t *c = &ch[i];
			if (c->rev == h->rev && c->dmax >= lo && c->dmin <= hi) continue; /* on this hit's path */
			if (c->score > h->alt_cov) { h->alt_cov = c->score; h->alt_diag = c->dmin; }
		}
	}
	sort_hits(hs, nh);
	gl_hit_t *kh = (gl_hit_t *)gl_alloc(keep, (uint32_t)(nh + 1) * sizeof(gl_hit_t)); /* +1: room for a rescued hit */
	if (!kh) return GL_ERR_ARENA_FULL;
	for (int j = 0; j < nh; ++j) {
		kh[j] = hs[j];
		if (hit_copy(keep, &kh[j]) < 0) return GL_ERR_ARENA_FULL;
	}
	out->h = kh; out->n = nh;
	hits_summary(out);
	return nh;
}

static void fill_hit(const gl_ref_t *R, const gl_hit_t *h, gl_aln_t *a) {
	a->tid = h->tid;
	a->gpos = (int32_t)h->gstart;
	a->pos = (int32_t)(h->gstart - R->ctg[h->tid].start);
	a->rev = h->rev;
	a->as = h->as;
	a->n_cigar = h->n_cigar;
	a->cigar_ptr = (uint32_t)(uintptr_t)h->cigar;
	if (h->rev) a->flag |= 0x10;
}

static void set_unmapped(gl_aln_t *a) {
	a->sup_tid = -1; a->sup_pos = -1; a->sup_rev = 0; a->sup_mapq = 0; a->sup_as = 0; a->sup_n_cigar = 0;
	a->sup_cigar_ptr = 0; a->sup_gpos = -1;
	a->flag = 0x4; a->tid = -1; a->pos = -1; a->mapq = 0; a->rev = 0;
	a->mtid = -1; a->mpos = -1; a->tlen = 0; a->as = 0; a->xs = -1; a->n_cigar = 0; a->cigar_ptr = 0;
	a->mate_n_cigar = 0; a->mate_cigar_ptr = 0; a->gpos = -1; a->hit = -1;
}

/*
 * Tandem repeats: the reference under the hit compared with itself shifted by 1..64
 * bases; a shift with few differences means an almost equally good placement nearby
 * (which the chains may not all have reached). Returns its estimated score, or 0.
 */
static int tandem_mm(const gl_index_t *idx, const gl_hit_t *h) {
	const uint8_t *s = gl_seq(idx);
	const gl_contig_t *c = &gl_ctg(idx)[h->tid];
	int64_t cs = c->start, ce = (int64_t)c->start + c->len;
	int len = (int)(h->gend - h->gstart), best = 7;
	for (int p = -64; p <= 64; ++p) {
		if (p == 0) continue;
		int64_t b = (int64_t)h->gstart + p;
		if (b < cs || b + len > ce) continue;
		int mm = 0;
		for (int i = 0; i < len && mm < best; ++i) mm += s[h->gstart + i] != s[b + i] || s[b + i] > 3;
		if (mm < best) best = mm;
	}
	return best;
}

static int tandem_sub(const gl_ref_t *R, const gl_hit_t *h, const gl_opts_t *o) {
	int best = R->idx ? tandem_mm(R->idx, h) : h->tmm;
	return best < 7 ? h->score - best * (o->a + o->b) : 0;
}

/* Score estimated for the best other placement near or away from hit h (0: none). */
static int alt_sub(const gl_ref_t *R, const gl_hit_t *h, const gl_opts_t *o) {
	int est = 0;
	if (h->alt_cov > 0) {
		int d = h->cov - h->alt_cov;
		if (d < 0) d = 0;
		est = h->score - d * (o->a + o->b) * 2 / R->k;
	}
	int t = tandem_sub(R, h, o);
	return t > est ? t : est;
}

/*
 * Chimeric reads: another hit that aligns a different part of the read (overlapping
 * the primary's query span by at most a fifth and adding >= 30 bases) becomes the
 * supplementary alignment.
 */
static void find_sup(const gl_ref_t *R, const gl_opts_t *o, int L, const gl_hits_t *hs, int k, gl_aln_t *out) {
	const gl_hit_t *p = &hs->h[k];
	int pb = p->rev ? L - p->qe : p->qb, pe = p->rev ? L - p->qb : p->qe;
	if (pe - pb > L - 30) return;
	int best = -1;
	for (int j = 0; j < hs->n; ++j) {
		if (j == k) continue;
		const gl_hit_t *s = &hs->h[j];
		if (s->as < o->min_score) continue;
		int sb = s->rev ? L - s->qe : s->qb, se = s->rev ? L - s->qb : s->qe;
		int ov = (se < pe ? se : pe) - (sb > pb ? sb : pb);
		if (ov < 0) ov = 0;
		int ls = se - sb, lp = pe - pb;
		if (ov * 5 > (ls < lp ? ls : lp) || ls - ov < 30) continue;
		if (best < 0 || s->score > hs->h[best].score) best = j;
	}
	if (best < 0) return;
	const gl_hit_t *s = &hs->h[best];
	int sub = 0; /* best other hit over the same part of the read */
	int sb = s->rev ? L - s->qe : s->qb, se = s->rev ? L - s->qb : s->qe;
	for (int j = 0; j < hs->n; ++j) {
		if (j == k || j == best) continue;
		const gl_hit_t *t = &hs->h[j];
		int tb = t->rev ? L - t->qe : t->qb, te = t->rev ? L - t->qb : t->qe;
		int ov = (te < se ? te : se) - (tb > sb ? tb : sb);
		if (ov * 2 > se - sb && t->score > sub) sub = t->score;
	}
	out->sup_tid = s->tid;
	out->sup_gpos = (int32_t)s->gstart;
	out->sup_pos = (int32_t)(s->gstart - R->ctg[s->tid].start);
	out->sup_rev = s->rev;
	out->sup_mapq = gl_mapq(s->score, sub, se - sb, o);
	out->sup_as = s->as;
	out->sup_n_cigar = s->n_cigar;
	out->sup_cigar_ptr = (uint32_t)(uintptr_t)s->cigar;
}

/* Hits t and p align mostly the same part of the read (t competes with p, rather than
 * aligning another part of a chimeric read). */
static int same_part(const gl_hit_t *p, const gl_hit_t *t, int L) {
	int pb = p->rev ? L - p->qe : p->qb, pe = p->rev ? L - p->qb : p->qe;
	int tb = t->rev ? L - t->qe : t->qb, te = t->rev ? L - t->qb : t->qe;
	int ov = (te < pe ? te : pe) - (tb > pb ? tb : pb);
	int lm = (te - tb) < (pe - pb) ? (te - tb) : (pe - pb);
	return ov * 2 > lm;
}

void gl_single(gl_ref_t *R, const gl_opts_t *o, int L, const gl_hits_t *h, gl_aln_t *out) {
	set_unmapped(out);
	if (h->n == 0 || h->h[0].score < o->min_score) return;
	out->flag = 0;
	fill_hit(R, &h->h[0], out);
	out->hit = 0;
	int sub = 0, xs = -1;
	for (int j = 1; j < h->n; ++j) {
		const gl_hit_t *t = &h->h[j];
		if (!same_part(&h->h[0], t, L)) continue;
		if (t->score > sub) sub = t->score;
		if (t->as >= o->min_score && t->as > xs) xs = t->as;
	}
	int est = alt_sub(R, &h->h[0], o);
	if (est > sub) sub = est;
	out->mapq = gl_mapq(h->h[0].score, sub, L, o);
	out->xs = xs;
	find_sup(R, o, L, h, 0, out);
}

/* Fragment length of an FR pair (fwd hit f, reverse hit r), or -1 when not FR. */
static int64_t fr_isize(const gl_hit_t *a, const gl_hit_t *b) {
	if (a->tid != b->tid || a->rev == b->rev) return -1;
	const gl_hit_t *f = a->rev ? b : a, *r = a->rev ? a : b;
	if ((int64_t)r->gend < (int64_t)f->gstart) return -1;
	if (r->gstart < f->gstart) return -1; /* RF or overhanging: not a proper FR pair */
	return (int64_t)r->gend - f->gstart;
}

void gl_isize(const gl_opts_t *o, int n_pairs, const gl_hits_t *hits, gl_stats_t *st) {
	st->isize_mean = o->isize_mean; st->isize_sd = o->isize_sd; st->isize_n = 0;
	/* two passes over a small histogram-free sample: collect into a fixed array */
	enum { CAP = 4096 };
	int32_t v[CAP];
	int n = 0;
	for (int p = 0; p < n_pairs && n < CAP; ++p) {
		const gl_hits_t *a = &hits[2 * p], *b = &hits[2 * p + 1];
		if (a->n != 1 || b->n != 1) continue; /* unique placements only */
		if (a->h[0].score < o->min_score || b->h[0].score < o->min_score) continue;
		int64_t is = fr_isize(&a->h[0], &b->h[0]);
		if (is <= 0 || is > 100000) continue;
		v[n++] = (int32_t)is;
	}
	if (n < 25) return;
	/* sort (shell sort) for quartiles */
	for (int gap = n / 2; gap > 0; gap /= 2)
		for (int i = gap; i < n; ++i) {
			int32_t t = v[i];
			int j = i;
			while (j >= gap && v[j - gap] > t) { v[j] = v[j - gap]; j -= gap; }
			v[j] = t;
		}
	int32_t q1 = v[n / 4], q3 = v[3 * n / 4], iqr = q3 - q1;
	int64_t lo = (int64_t)q1 - 2 * (int64_t)iqr, hi = (int64_t)q3 + 2 * (int64_t)iqr;
	double s = 0, s2 = 0;
	int m = 0;
	for (int i = 0; i < n; ++i)
		if (v[i] >= lo && v[i] <= hi) { s += v[i]; s2 += (double)v[i] * v[i]; ++m; }
	if (m < 25) return;
	double mean = s / m, var = s2 / m - mean * mean;
	double sd = var > 1 ? __builtin_sqrt(var) : 1;
	st->isize_mean = (int32_t)(mean + 0.5);
	st->isize_sd = (int32_t)(sd + 0.5) > 10 ? (int32_t)(sd + 0.5) : 10;
	st->isize_n = m;
}

/* Penalty (score units) for a fragment z standard deviations from the mean: about -ln P(|Z| > z). */
static int isize_pen(double z, const gl_opts_t *o) {
	if (z < 0) z = -z;
	return (int)(0.721 * (0.5 * z * z + 0.4 * z) * o->a + 0.499);
}

static int proper(const gl_hit_t *a, const gl_hit_t *b, const gl_stats_t *st, double *z) {
	int64_t is = fr_isize(a, b);
	if (is < 0) return 0;
	*z = ((double)is - st->isize_mean) / (st->isize_sd > 0 ? st->isize_sd : 1);
	return *z < 4 && *z > -4;
}

/* Searches the mate's expected window next to hit h; adds a found hit to mh. */
static int rescue(gl_ref_t *R, const gl_opts_t *o, const gl_hit_t *h, int mread, const uint8_t *mfwd, const uint8_t *mrc,
                  int mL, gl_hits_t *mh, gl_arena_t *keep, gl_arena_t *scratch, const gl_stats_t *st) {
	/* the mate's expected start, then a band of +-4 sd (plus the extension band) around it */
	int64_t dev = 4 * (int64_t)st->isize_sd + o->band;
	int mrev = !h->rev;
	int64_t exp = !h->rev ? (int64_t)h->gstart + st->isize_mean - mL : (int64_t)h->gend - st->isize_mean;
	int64_t ws = exp - dev, we = exp + dev + mL;
	if (we - ws > 4 * GL_MAX_READ) return 0;
	gl_hit_t nh;
	scratch->used = 0; scratch->oom = 0;
	int r = window_hit(R, o, mread, mrev ? mrc : mfwd, mL, mrev, h->tid, ws, we, 0, (int)(2 * dev), scratch, &nh);
	if (r == GL_PENDING) return r;
	if (r < 0) return 0;
	if (nh.score < o->min_score) return 0;
	for (int j = 0; j < mh->n; ++j)
		if (same_place(&mh->h[j], &nh)) return 0; /* already known */
	if (hit_copy(keep, &nh) < 0) return GL_ERR_ARENA_FULL;
	/* one slot of room was reserved by gl_map_read; otherwise grow */
	gl_hit_t *arr = (gl_hit_t *)gl_alloc(keep, (uint32_t)(mh->n + 1) * sizeof(gl_hit_t));
	if (!arr) return GL_ERR_ARENA_FULL;
	for (int j = 0; j < mh->n; ++j) arr[j] = mh->h[j];
	arr[mh->n++] = nh;
	mh->h = arr;
	sort_hits(mh->h, mh->n);
	hits_summary(mh);
	return 1;
}

static void mate_fields(gl_aln_t *a, const gl_aln_t *m) {
	if (m->flag & 0x4) { a->flag |= 0x8; }
	else {
		if (m->flag & 0x10) a->flag |= 0x20;
		a->mate_n_cigar = m->n_cigar; a->mate_cigar_ptr = m->cigar_ptr;
	}
}

static uint32_t ref_len(const gl_aln_t *a) {
	const uint32_t *c = (const uint32_t *)(uintptr_t)a->cigar_ptr;
	uint32_t l = 0;
	for (int i = 0; i < a->n_cigar; ++i) {
		int op = c[i] & 0xf;
		if (op == 0 || op == 2) l += c[i] >> 4;
	}
	return l;
}

int gl_pair(gl_ref_t *R, const gl_opts_t *o, const int read[2], const uint8_t *const seq[2][2], const int len[2],
            gl_hits_t hits[2], gl_aln_t out[2], gl_arena_t *keep, gl_arena_t *scratch, const gl_stats_t *st,
            int *n_rescued) {
	/* mate rescue around the best hits of each read (replay: a missing answer counts as
	 * nothing found for now, so that the questions of later hits are asked in the same round) */
	int pending = 0;
	for (int r = 0; r < 2; ++r) {
		if (!seq[1 - r][0]) continue; /* the mate has no usable sequence */
		int m = 1 - r, nr = hits[r].n < o->max_rescue ? hits[r].n : o->max_rescue;
		for (int i = 0; i < nr; ++i) {
			const gl_hit_t *h = &hits[r].h[i];
			if (h->score < o->min_score || (i > 0 && h->score < hits[r].h[0].score - o->pen_unpaired)) continue;
			int have = 0;
			double z;
			for (int j = 0; j < hits[m].n && !have; ++j) have = proper(h, &hits[m].h[j], st, &z);
			if (have) continue;
			gl_hit_t hc = *h; /* the array may move */
			int rr = rescue(R, o, &hc, read[m], seq[m][0], seq[m][1], len[m], &hits[m], keep, scratch, st);
			if (rr == GL_PENDING) { pending = 1; continue; }
			if (rr < 0) return rr;
			*n_rescued += rr;
		}
	}
	if (pending) return GL_PENDING;
	/* best and second-best pairing */
	int best = -0x40000000, second = -0x40000000, bi = -1, bj = -1;
	for (int i = 0; i < hits[0].n; ++i)
		for (int j = 0; j < hits[1].n; ++j) {
			const gl_hit_t *a = &hits[0].h[i], *b = &hits[1].h[j];
			if (a->score < o->min_score || b->score < o->min_score) continue;
			double z;
			if (!proper(a, b, st, &z)) continue;
			int s = a->score + b->score - isize_pen(z, o);
			if (s > best) { second = best; best = s; bi = i; bj = j; }
			else if (s > second) second = s;
		}
	int u0 = hits[0].n ? hits[0].h[0].score : 0, u1 = hits[1].n ? hits[1].h[0].score : 0;
	int unpaired = u0 + u1 - o->pen_unpaired;
	if (bi >= 0 && best >= unpaired) {
		int est[2];
		if (unpaired > second) second = unpaired; /* the reads placed on their own are an alternative too */
		for (int r = 0; r < 2; ++r) { /* a nearby alternative (tandem shift) pairs as well as the placement */
			const gl_hit_t *h = &hits[r].h[r == 0 ? bi : bj];
			est[r] = alt_sub(R, h, o);
			int64_t dh = (int64_t)h->gstart - h->qb, span = (int64_t)st->isize_mean + 4 * (int64_t)st->isize_sd;
			int near = tandem_sub(R, h, o) >= est[r] || (h->alt_diag - dh < span && dh - h->alt_diag < span);
			if (est[r] > 0 && near && best - (h->score - est[r]) > second)
				second = best - (h->score - est[r]);
		}
		for (int r = 0; r < 2; ++r) {
			int k = r == 0 ? bi : bj;
			const gl_hit_t *h = &hits[r].h[k];
			set_unmapped(&out[r]);
			out[r].flag = 0x2;
			fill_hit(R, h, &out[r]);
			out[r].hit = k;
			/* single-end quality: best other placement of this read */
			int sub = est[r];
			for (int j = 0; j < hits[r].n; ++j)
				if (j != k && hits[r].h[j].score > sub && same_part(h, &hits[r].h[j], len[r])) sub = hits[r].h[j].score;
			int qse = gl_mapq(h->score, sub, len[r], o);
			int qpe = second > -0x40000000 ? (int)(6.02 * (best - second) / o->a + 0.499) : 60;
			if (qpe > 60) qpe = 60;
			if (qpe < 0) qpe = 0;
			int q = qse;
			if (qpe > q) q = qpe < q + 40 ? qpe : q + 40;
			if (q > 60) q = 60;
			out[r].mapq = q;
			int xs = -1;
			for (int j = 0; j < hits[r].n; ++j)
				if (j != k && hits[r].h[j].as >= o->min_score && hits[r].h[j].as > xs && same_part(h, &hits[r].h[j], len[r])) xs = hits[r].h[j].as;
			out[r].xs = xs;
			find_sup(R, o, len[r], &hits[r], k, &out[r]);
		}
	} else {
		gl_single(R, o, len[0], &hits[0], &out[0]);
		gl_single(R, o, len[1], &hits[1], &out[1]);
	}
	/* an unmapped read is placed at its mate */
	for (int r = 0; r < 2; ++r) {
		gl_aln_t *a = &out[r], *m = &out[1 - r];
		if ((a->flag & 0x4) && !(m->flag & 0x4)) { a->tid = m->tid; a->pos = m->pos; a->gpos = m->gpos; }
	}
	for (int r = 0; r < 2; ++r) {
		gl_aln_t *a = &out[r], *m = &out[1 - r];
		a->flag |= 0x1 | (r == 0 ? 0x40 : 0x80);
		mate_fields(a, m);
		a->mtid = m->tid; a->mpos = m->pos;
		a->tlen = 0;
	}
	if (!(out[0].flag & 0x4) && !(out[1].flag & 0x4) && out[0].tid == out[1].tid) {
		int64_t b0 = out[0].pos, e0 = b0 + ref_len(&out[0]), b1 = out[1].pos, e1 = b1 + ref_len(&out[1]);
		/* SAM: from the leftmost to the rightmost mapped base, positive for the leftmost segment */
		int64_t lo = b0 < b1 ? b0 : b1, hi = e0 > e1 ? e0 : e1;
		int32_t t = (int32_t)(hi - lo);
		int first_left = b0 < b1 || (b0 == b1 && (out[0].flag & 0x10) == 0) || (b0 == b1 && (out[0].flag & 0x10) && (out[1].flag & 0x10));
		out[0].tlen = first_left ? t : -t;
		out[1].tlen = -out[0].tlen;
	}
	return 0;
}

/* A part answers a CHAIN or WINDOW request: the direct path's computation on local
 * coordinates (global minus base, tid minus first_tid), the hit translated back, its
 * tandem mismatches and (CHAIN) the scratch bytes it took. The answer (gl_hit_t, then the
 * CIGAR) goes to pool. Returns 0, or GL_ERR_ARENA_FULL when pool is full. */
int gl_serve_hit(const gl_index_t *idx, const gl_opts_t *o, uint32_t base, int first_tid, gl_req_t *rq,
                 const uint8_t *fwd, const uint8_t *rc, int L, gl_arena_t *scratch, gl_arena_t *pool) {
	scratch->used = 0; scratch->oom = 0; scratch->peak = 0;
	const uint8_t *q = rq->rev ? rc : fwd;
	int tid = rq->tid - first_tid, r;
	gl_hit_t h;
	if (rq->kind == GL_REQ_CHAIN) {
		int64_t dmin = rq->a - base, dmax = rq->b - base;
		int64_t ws = dmin - o->band, we = dmax + L + o->band;
		if (dmin == dmax && ungapped(idx, o, q, L, rq->rev, dmin, scratch, &h)) r = 0;
		else r = extend_window(idx, o, q, L, rq->rev, tid, ws, we, 0, (int)(dmax - dmin) + 2 * o->band, scratch, &h);
		rq->peak = scratch->oom ? 0xffffffffu : scratch->peak;
		rq->net = scratch->used;
	} else {
		r = extend_window(idx, o, q, L, rq->rev, tid, rq->a - base, rq->b - base, rq->c, rq->d, scratch, &h);
		rq->peak = rq->net = 0;
	}
	rq->data = pool->used; rq->len = 0; rq->nm = 0;
	if (r < 0) { rq->status = r; return 0; }
	rq->status = 0;
	h.tmm = tandem_mm(idx, &h);
	h.gstart += base; h.gend += base; h.tid += first_tid;
	uint8_t *p = (uint8_t *)gl_alloc(pool, (uint32_t)sizeof(gl_hit_t) + 4u * (uint32_t)h.n_cigar);
	if (!p) return GL_ERR_ARENA_FULL;
	gl_memcpy(p + sizeof(gl_hit_t), h.cigar, 4u * (uint32_t)h.n_cigar);
	h.cigar = 0;
	gl_memcpy(p, &h, sizeof(gl_hit_t));
	rq->len = pool->used - rq->data;
	return 0;
}

int gl_secondaries(const gl_ref_t *R, const gl_opts_t *o, int read, int L, const gl_hits_t *h, const gl_aln_t *a, gl_sec_t *out) {
	if ((a->flag & 0x4) || a->hit < 0 || a->hit >= h->n) return 0;
	const gl_hit_t *p = &h->h[a->hit];
	int n = 0;
	for (int j = 0; j < h->n; ++j) {
		const gl_hit_t *t = &h->h[j];
		if (j == a->hit || t->as < o->min_score || !same_part(p, t, L)) continue;
		if (a->sup_tid >= 0 && t->tid == a->sup_tid && (int32_t)t->gstart == a->sup_gpos && t->rev == a->sup_rev) continue;
		if (out) {
			gl_sec_t *s = &out[n];
			s->read = read; s->tid = t->tid; s->gpos = (int32_t)t->gstart;
			s->pos = (int32_t)(t->gstart - R->ctg[t->tid].start);
			s->rev = t->rev; s->as = t->as; s->n_cigar = t->n_cigar;
			s->cigar_ptr = (uint32_t)(uintptr_t)t->cigar;
		}
		++n;
	}
	return n;
}
