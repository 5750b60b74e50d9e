/* Batch entry points: the host calls one of them once per batch of reads. */
#include "gl.h"

GL_EXPORT(gl_abi)
int32_t gl_abi(void) { return (int32_t)(sizeof(gl_opts_t) << 16 | sizeof(gl_aln_t)); }

/* all_hits: the secondary alignments of every read, in read order, listed in keep. */
static int list_secondaries(const gl_ref_t *R, const gl_opts_t *o, int32_t n, const int32_t *offs, const gl_hits_t *hits,
                            const gl_aln_t *out, gl_arena_t *keep, gl_stats_t *st) {
	int total = 0;
	for (int i = 0; i < n; ++i) total += gl_secondaries(R, o, i, offs[i + 1] - offs[i], &hits[i], &out[i], 0);
	if (total == 0) return 0;
	gl_sec_t *sec = (gl_sec_t *)gl_alloc(keep, (uint32_t)total * sizeof(gl_sec_t));
	if (!sec) return GL_ERR_ARENA_FULL;
	int k = 0;
	for (int i = 0; i < n; ++i) k += gl_secondaries(R, o, i, offs[i + 1] - offs[i], &hits[i], &out[i], sec + k);
	st->n_sec = k;
	st->sec = (uint32_t)(uintptr_t)sec;
	return 0;
}

/*
 * Replay mode: a read's mapping (gl_map_read's result and its hits) is kept after the
 * call that completed it, and later calls for the batch restore it with the same arena
 * allocations gl_map_read makes, instead of seeding and chaining it again.
 */
typedef struct { int32_t rc, alloc, n, n_best, sub, pad; } memo_head_t;

static void memo_store(gl_ref_t *R, int i, int rc, const gl_hits_t *h) {
	uint32_t need = sizeof(memo_head_t) + (uint32_t)h->n * sizeof(gl_hit_t);
	for (int j = 0; j < h->n; ++j) need += (4u * (uint32_t)h->h[j].n_cigar + 7u) & ~7u;
	if (need > R->memo_cap - R->memo_used) return; /* no room: mapped again next time */
	uint8_t *p = R->memo + R->memo_used;
	memo_head_t *m = (memo_head_t *)p;
	m->rc = rc; m->alloc = h->h != 0; m->n = h->n; m->n_best = h->n_best; m->sub = h->sub; m->pad = 0;
	gl_hit_t *hs = (gl_hit_t *)(p + sizeof(memo_head_t));
	uint8_t *c = (uint8_t *)(hs + h->n);
	for (int j = 0; j < h->n; ++j) {
		hs[j] = h->h[j];
		gl_memcpy(c, h->h[j].cigar, 4u * (uint32_t)h->h[j].n_cigar);
		c += (4u * (uint32_t)h->h[j].n_cigar + 7u) & ~7u;
	}
	R->memo_idx[i] = (int32_t)R->memo_used + 1;
	R->memo_used += need;
}

static int memo_restore(const gl_ref_t *R, int i, gl_arena_t *keep, gl_hits_t *out) {
	const uint8_t *p = R->memo + (R->memo_idx[i] - 1);
	const memo_head_t *m = (const memo_head_t *)p;
	out->n = 0; out->h = 0; out->n_best = 0; out->sub = 0;
	if (!m->alloc) return m->rc;
	const gl_hit_t *hs = (const gl_hit_t *)(p + sizeof(memo_head_t));
	const uint8_t *c = (const uint8_t *)(hs + m->n);
	gl_hit_t *kh = (gl_hit_t *)gl_alloc(keep, (uint32_t)(m->n + 1) * sizeof(gl_hit_t));
	if (!kh) return GL_ERR_ARENA_FULL;
	for (int j = 0; j < m->n; ++j) {
		kh[j] = hs[j];
		uint32_t *cg = (uint32_t *)gl_alloc(keep, 4u * (uint32_t)hs[j].n_cigar);
		if (!cg) return GL_ERR_ARENA_FULL;
		gl_memcpy(cg, c, 4u * (uint32_t)hs[j].n_cigar);
		kh[j].cigar = cg;
		c += (4u * (uint32_t)hs[j].n_cigar + 7u) & ~7u;
	}
	out->h = kh; out->n = m->n; out->n_best = m->n_best; out->sub = m->sub;
	return m->rc;
}

/* The batch logic of both modes; GL_PENDING (replay) when an answer is missing somewhere. */
int gl_batch(gl_ref_t *R, const gl_opts_t *o, int32_t n, int32_t paired, const uint8_t *seqs, const int32_t *offs,
             gl_aln_t *out, uint8_t *arena, uint32_t arena_cap, gl_stats_t *st) {
	if (n < 0 || (paired && (n & 1))) return GL_ERR_BAD_INPUT;
	uint32_t scap = arena_cap / 4 < (8u << 20) ? arena_cap / 4 : (8u << 20);
	gl_arena_t scratch = { arena, scap, 0, 0, 0 };
	gl_arena_t keep = { arena + scap, arena_cap - scap, 0, 0, 0 };
	st->isize_mean = o->isize_mean; st->isize_sd = o->isize_sd; st->isize_n = 0; st->n_rescued = 0;
	st->n_sec = 0; st->sec = 0;
	gl_hits_t *hits = (gl_hits_t *)gl_alloc(&keep, (uint32_t)n * sizeof(gl_hits_t));
	uint8_t **codes = (uint8_t **)gl_alloc(&keep, (uint32_t)n * 2u * sizeof(uint8_t *));
	if (!hits || !codes) return GL_ERR_ARENA_FULL;
	int pending = 0;
	for (int i = 0; i < n; ++i) {
		int L = offs[i + 1] - offs[i];
		hits[i].n = 0; hits[i].h = 0; hits[i].n_best = 0; hits[i].sub = 0;
		codes[2 * i] = codes[2 * i + 1] = 0;
		if (L <= 0 || L > GL_MAX_READ) continue;
		uint8_t *f = (uint8_t *)gl_alloc(&keep, (uint32_t)L), *r = (uint8_t *)gl_alloc(&keep, (uint32_t)L);
		if (!f || !r) return GL_ERR_ARENA_FULL;
		const uint8_t *s = seqs + offs[i];
		for (int j = 0; j < L; ++j) {
			uint8_t c = gl_nt4[s[j]];
			f[j] = c;
			r[L - 1 - j] = c < 4 ? (uint8_t)(3 - c) : 4;
		}
		codes[2 * i] = f; codes[2 * i + 1] = r;
		int rc;
		if (R->memo_idx && R->memo_idx[i]) {
			rc = memo_restore(R, i, &keep, &hits[i]);
		} else {
			rc = gl_map_read(R, o, i, f, r, L, &keep, &scratch, &hits[i]);
			if (R->memo_idx && rc != GL_PENDING && !keep.oom) memo_store(R, i, rc, &hits[i]);
		}
		if (rc == GL_PENDING) { pending = 1; hits[i].n = 0; continue; }
		if (rc == GL_ERR_ARENA_FULL && keep.oom) return GL_ERR_ARENA_FULL;
		if (rc < 0) { hits[i].n = 0; } /* scratch too small for this read: left unmapped */
	}
	if (pending) return GL_PENDING; /* the insert size and the pairing need every read's hits */
	if (!paired) {
		for (int i = 0; i < n; ++i) gl_single(R, o, offs[i + 1] - offs[i], &hits[i], &out[i]);
		return o->all_hits ? list_secondaries(R, o, n, offs, hits, out, &keep, st) : 0;
	}
	gl_isize(o, n / 2, hits, st);
	for (int p = 0; p < n / 2; ++p) {
		const uint8_t *const sq[2][2] = { { codes[4 * p], codes[4 * p + 1] }, { codes[4 * p + 2], codes[4 * p + 3] } };
		int len[2] = { offs[2 * p + 1] - offs[2 * p], offs[2 * p + 2] - offs[2 * p + 1] };
		int rd[2] = { 2 * p, 2 * p + 1 };
		int rc;
		if (!sq[0][0] || !sq[1][0]) { /* a read of unusable length: both handled as single ends */
			gl_hits_t empty = { 0, 0, 0, 0 };
			gl_hits_t h2[2] = { sq[0][0] ? hits[2 * p] : empty, sq[1][0] ? hits[2 * p + 1] : empty };
			int nr = 0;
			rc = gl_pair(R, o, rd, sq, len, h2, &out[2 * p], &keep, &scratch, st, &nr);
		} else {
			rc = gl_pair(R, o, rd, sq, len, &hits[2 * p], &out[2 * p], &keep, &scratch, st, &st->n_rescued);
		}
		if (rc == GL_PENDING) { pending = 1; continue; }
		if (rc < 0) return rc;
	}
	if (pending) return GL_PENDING;
	return o->all_hits ? list_secondaries(R, o, n, offs, hits, out, &keep, st) : 0;
}

GL_EXPORT(gl_align_batch)
int32_t gl_align_batch(const gl_index_t *idx, const gl_opts_t *o, int32_t n, int32_t paired,
                       const uint8_t *seqs, const int32_t *offs, gl_aln_t *out,
                       uint8_t *arena, uint32_t arena_cap, gl_stats_t *st) {
	if (!gl_index_ok(idx)) return GL_ERR_BAD_INDEX;
	gl_ref_t R = { idx, (int32_t)idx->k, (int32_t)idx->w, 1, 0, idx->seq_len, idx->n_contigs, gl_ctg(idx),
	               0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	int rc = gl_batch(&R, o, n, paired, seqs, offs, out, arena, arena_cap, st);
	return rc == GL_PENDING ? GL_ERR_BAD_INDEX : rc;
}

/* dv->index_area must hold int32[n + 1 + n_cache] (answers grouped by read). */
GL_EXPORT(gl_drive_batch)
int32_t gl_drive_batch(const gl_opts_t *o, int32_t n, int32_t paired, const uint8_t *seqs, const int32_t *offs,
                       gl_aln_t *out, uint8_t *arena, uint32_t arena_cap, gl_stats_t *st, gl_drive_t *dv) {
	if (n < 0 || dv->n_parts < 1 || dv->n_parts > 64 || dv->cap_reqs < 1) return GL_ERR_BAD_INPUT;
	const gl_req_t *cache = (const gl_req_t *)(uintptr_t)dv->cache;
	int32_t *by_read = (int32_t *)(uintptr_t)dv->index_area, *order = by_read + n + 1;
	for (int i = 0; i <= n; ++i) by_read[i] = 0;
	for (uint32_t t = 0; t < dv->n_cache; ++t) {
		int r = cache[t].read;
		if (r < 0 || r >= n) return GL_ERR_BAD_INPUT;
		++by_read[r + 1];
	}
	for (int i = 0; i < n; ++i) by_read[i + 1] += by_read[i];
	for (uint32_t t = 0; t < dv->n_cache; ++t) order[by_read[cache[t].read]++] = (int32_t)t; /* by_read[i] now ends read i */
	for (int i = n; i > 0; --i) by_read[i] = by_read[i - 1];
	by_read[0] = 0;
	gl_ref_t R = { 0, dv->k, dv->w, dv->n_parts, 0, dv->seq_len, (uint32_t)dv->n_contigs,
	               (const gl_contig_t *)(uintptr_t)dv->ctg, cache, by_read, order, (const uint8_t *)(uintptr_t)dv->pool,
	               (gl_req_t *)(uintptr_t)dv->reqs, 0, (int32_t)dv->cap_reqs, 0,
	               (int32_t *)(uintptr_t)dv->memo_idx, (uint8_t *)(uintptr_t)dv->memo, dv->memo_cap, dv->memo_used };
	int rc = gl_batch(&R, o, n, paired, seqs, offs, out, arena, arena_cap, st);
	dv->n_reqs = R.n_reqs;
	dv->memo_used = R.memo_used;
	if (rc == GL_PENDING) return R.n_reqs > 0 ? 1 : GL_ERR_BAD_INPUT;
	return rc;
}

GL_EXPORT(gl_serve)
int32_t gl_serve(const gl_index_t *idx, const gl_opts_t *o, uint32_t base, int32_t first_tid, const uint8_t *seqs,
                 const int32_t *offs, gl_req_t *reqs, int32_t n_req, uint8_t *arena, uint32_t arena_cap,
                 uint8_t *pool, uint32_t pool_cap, uint32_t *pool_used) {
	if (!gl_index_ok(idx)) return GL_ERR_BAD_INDEX;
	/* the same scratch size as the driver's, so a part never fails where the direct path would not */
	uint32_t scap = arena_cap / 4 < (8u << 20) ? arena_cap / 4 : (8u << 20);
	gl_arena_t scratch = { arena, scap, 0, 0, 0 };
	gl_arena_t pl = { pool, pool_cap, 0, 0, 0 };
	uint8_t *f = arena + scap, *r = f + GL_MAX_READ;
	if (arena_cap < scap + 2 * GL_MAX_READ) return GL_ERR_ARENA_FULL;
	int t;
	for (t = 0; t < n_req; ++t) {
		gl_req_t *rq = &reqs[t];
		int L = offs[rq->read + 1] - offs[rq->read];
		if (L <= 0 || L > GL_MAX_READ) return GL_ERR_BAD_INPUT;
		const uint8_t *s = seqs + offs[rq->read];
		for (int j = 0; j < L; ++j) {
			uint8_t c = gl_nt4[s[j]];
			f[j] = c;
			r[L - 1 - j] = c < 4 ? (uint8_t)(3 - c) : 4;
		}
		uint32_t mark = pl.used;
		int rc;
		if (rq->kind == GL_REQ_SEED) {
			scratch.used = 0; scratch.oom = 0;
			int nm = 0;
			rc = gl_seed_part(idx, f, L, rq->c, base, &scratch, &pl, &nm);
			if (rc >= 0) { rq->status = rc; rq->nm = nm; rq->data = mark; rq->len = pl.used - mark; rq->peak = rq->net = 0; rc = 0; }
		} else if (rq->kind == GL_REQ_CHAIN || rq->kind == GL_REQ_WINDOW) {
			rc = gl_serve_hit(idx, o, base, first_tid, rq, f, r, L, &scratch, &pl);
		} else {
			return GL_ERR_BAD_INPUT;
		}
		if (rc < 0) { /* the pool is full: the host collects what is done and asks again */
			pl.used = mark;
			break;
		}
	}
	*pool_used = pl.used;
	return t > 0 || n_req == 0 ? t : GL_ERR_ARENA_FULL;
}
