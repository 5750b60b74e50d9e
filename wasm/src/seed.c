/* Seeding: (w,k) minimizers of canonical k-mers, and their reference hits as anchors. */
#include "gl.h"

/* ASCII -> 0..3 for ACGT (either case), 4 for anything else (N and IUPAC codes). */
const uint8_t gl_nt4[256] = {
	['A'] = 0, ['C'] = 1, ['G'] = 2, ['T'] = 3, ['a'] = 0, ['c'] = 1, ['g'] = 2, ['t'] = 3,
	/* everything not listed must be 4: filled below by designated ranges */
	[0 ... 'A' - 1] = 4, ['B'] = 4, ['D' ... 'F'] = 4, ['H' ... 'S'] = 4, ['U' ... 'a' - 1] = 4,
	['b'] = 4, ['d' ... 'f'] = 4, ['h' ... 's'] = 4, ['u' ... 255] = 4,
};

/*
 * Invertible mixing of a 2k-bit k-mer (xor-shift and odd multiply, both bijective
 * modulo 2^2k), so distinct k-mers keep distinct keys and minimizers are spread
 * evenly instead of favouring poly-A.
 */
static inline uint64_t mix(uint64_t x, uint64_t mask, int k) {
	x ^= x >> (k + 1);
	x = (x * 0x9e3779b97f4a7c15ull) & mask;
	x ^= x >> (k - 3);
	x = (x * 0xbf58476d1ce4e5b9ull) & mask;
	x ^= x >> k;
	return x;
}

/*
 * Writes the minimizers of s (codes 0..4) to out (or only counts them if out is
 * NULL); returns their number (<= len).
 * A window of w consecutive k-mers contributes its smallest key (leftmost on ties);
 * k-mers containing N are skipped. Strand: rev = 1 if the reverse complement is the
 * canonical (smaller) k-mer. Requires k odd (no palindromes), k <= 31.
 */
int gl_sketch(const uint8_t *s, int len, int k, int w, gl_mz_t *out) {
	const uint64_t mask = (k >= 32) ? ~0ull : ((1ull << (2 * k)) - 1);
	const int shift = 2 * (k - 1);
	uint64_t fw = 0, rv = 0;
	int l = 0, n = 0;
	/* circular buffer of the last w k-mer keys */
	gl_mz_t buf[64];
	int bpos = 0, nk = 0, mi = -1; /* mi: index in buf of the current minimum */
	uint32_t last_pos = 0xffffffffu;
	if (w > 64) w = 64;
	for (int i = 0; i < len; ++i) {
		int c = s[i];
		gl_mz_t cur;
		if (c < 4) {
			fw = ((fw << 2) | (uint64_t)c) & mask;
			rv = (rv >> 2) | ((uint64_t)(3 - c) << shift);
			if (++l < k) continue;
			cur.rev = rv < fw;
			cur.h = mix(cur.rev ? rv : fw, mask, k);
			cur.pos = (uint32_t)(i - k + 1);
		} else {
			l = 0; fw = rv = 0;
			cur.h = ~0ull; cur.pos = 0xffffffffu; cur.rev = 0; /* a gap: never selected */
		}
		buf[bpos] = cur;
		if (nk < w) ++nk;
		if (mi == bpos) { /* the minimum leaves the window: rescan */
			mi = -1;
		}
		if (mi < 0) {
			int oldest = (bpos - nk + 1 + w) % w;
			for (int j = 0; j < nk; ++j) { /* oldest to newest: leftmost wins ties */
				int t = (oldest + j) % w;
				if (mi < 0 || buf[t].h < buf[mi].h) mi = t;
			}
		} else if (cur.h < buf[mi].h) {
			mi = bpos;
		}
		if (nk == w && mi >= 0 && buf[mi].h != ~0ull && buf[mi].pos != last_pos) {
			if (out) out[n] = buf[mi]; /* out == NULL: count only */
			++n;
			last_pos = buf[mi].pos;
		}
		bpos = (bpos + 1) % w;
	}
	return n;
}

/* Key range for hash h: binary search inside the bucket given by its top bits. */
static int lookup(const gl_index_t *idx, uint64_t h, uint32_t *st, uint32_t *cnt) {
	const uint8_t *b = (const uint8_t *)idx;
	const uint64_t *keys = (const uint64_t *)(b + idx->key_off);
	const uint32_t *kst = (const uint32_t *)(b + idx->kst_off);
	const uint32_t *pre = (const uint32_t *)(b + idx->pre_off);
	int kbits = 2 * (int)idx->k;
	uint32_t p = (uint32_t)(h >> (kbits - (int)idx->pre_bits));
	uint32_t lo = pre[p], hi = pre[p + 1];
	while (lo < hi) {
		uint32_t mid = (lo + hi) >> 1;
		if (keys[mid] < h) lo = mid + 1; else hi = mid;
	}
	if (lo < idx->n_keys && keys[lo] == h) {
		*st = kst[lo];
		*cnt = kst[lo + 1] - kst[lo];
		return 1;
	}
	return 0;
}

/*
 * Anchors of a read: for every minimizer hit, (rev << 63 | global_ref_pos << 16 | qpos)
 * where qpos is on the read in the orientation that matches the forward reference;
 * minimizers with more than max_occ occurrences are skipped.
 * Returns their number, or GL_ERR_ARENA_FULL.
 */
int gl_collect_anchors(const gl_index_t *idx, const uint8_t *q, int len, int max_occ,
                       gl_arena_t *a, uint64_t **anchors_out) {
	int k = (int)idx->k, w = (int)idx->w;
	*anchors_out = 0;
	if (len < k) return 0;
	gl_mz_t *mz = (gl_mz_t *)gl_alloc(a, (uint32_t)len * sizeof(gl_mz_t));
	if (!mz) return GL_ERR_ARENA_FULL;
	int nm = gl_sketch(q, len, k, w, mz);
	uint32_t total = 0, st, cnt;
	for (int i = 0; i < nm; ++i)
		if (lookup(idx, mz[i].h, &st, &cnt) && cnt <= (uint32_t)max_occ) total += cnt;
	if (total == 0) return 0;
	uint64_t *anc = (uint64_t *)gl_alloc(a, total * 8u);
	if (!anc) return GL_ERR_ARENA_FULL;
	const uint32_t *pos = (const uint32_t *)((const uint8_t *)idx + idx->pos_off);
	int n = 0;
	for (int i = 0; i < nm; ++i) {
		if (!lookup(idx, mz[i].h, &st, &cnt) || cnt > (uint32_t)max_occ) continue;
		for (uint32_t j = 0; j < cnt; ++j) {
			uint32_t v = pos[st + j];
			uint64_t r = v >> 1;
			uint64_t rev = (v & 1u) ^ mz[i].rev;
			uint32_t qp = rev ? (uint32_t)(len - (int)mz[i].pos - k) : mz[i].pos;
			anc[n++] = rev << 63 | r << 16 | qp;
		}
	}
	*anchors_out = anc;
	return n;
}

/*
 * SEED answer of one part, allocated in pool: uint32 counts[nm] (occurrences in this part
 * of each minimizer of the read), then the anchors of the minimizers with at most thr
 * occurrences here (one above thr here is above it in the whole genome) as
 * rev << 63 | (base + pos) << 20 | mi << 10 | qpos. Returns the number of anchors.
 */
int gl_seed_part(const gl_index_t *idx, const uint8_t *q, int len, int thr, uint32_t base,
                 gl_arena_t *scratch, gl_arena_t *pool, int *nm_out) {
	int k = (int)idx->k, w = (int)idx->w;
	*nm_out = 0;
	if (len < k) return 0;
	gl_mz_t *mz = (gl_mz_t *)gl_alloc(scratch, (uint32_t)len * sizeof(gl_mz_t));
	if (!mz) return GL_ERR_ARENA_FULL;
	int nm = gl_sketch(q, len, k, w, mz);
	uint32_t st, cnt, total = 0;
	for (int i = 0; i < nm; ++i) if (lookup(idx, mz[i].h, &st, &cnt) && cnt <= (uint32_t)thr) total += cnt;
	uint32_t head = (4u * (uint32_t)nm + 7u) & ~7u;
	uint8_t *ans = (uint8_t *)gl_alloc(pool, head + 8u * total);
	if (!ans) return GL_ERR_ARENA_FULL;
	uint32_t *counts = (uint32_t *)ans;
	uint64_t *anc = (uint64_t *)(ans + head);
	const uint32_t *pos = (const uint32_t *)((const uint8_t *)idx + idx->pos_off);
	int n = 0;
	for (int i = 0; i < nm; ++i) {
		if (!lookup(idx, mz[i].h, &st, &cnt)) { counts[i] = 0; continue; }
		counts[i] = cnt;
		if (cnt > (uint32_t)thr) continue;
		for (uint32_t j = 0; j < cnt; ++j) {
			uint32_t v = pos[st + j];
			uint64_t r = (uint64_t)base + (v >> 1);
			uint64_t rev = (v & 1u) ^ mz[i].rev;
			uint32_t qp = rev ? (uint32_t)(len - (int)mz[i].pos - k) : mz[i].pos;
			anc[n++] = rev << 63 | r << 20 | (uint64_t)i << 10 | qp;
		}
	}
	*nm_out = nm;
	return n;
}

/*
 * Replay mode: the anchors of a read from the SEED answers of every part, with the
 * arena use of gl_collect_anchors (so arena limits bite where they bite there).
 */
int gl_seed_merge(gl_ref_t *R, int read, int len, int thr, gl_arena_t *a, uint64_t **anchors_out) {
	*anchors_out = 0;
	if (len < R->k) return 0;
	const gl_req_t *ans[64];
	int na = 0;
	for (int t = R->by_read[read]; t < R->by_read[read + 1] && na < R->n_parts; ++t) {
		const gl_req_t *c = &R->cache[R->order[t]];
		if (c->kind != GL_REQ_SEED || c->c != thr) continue;
		int dup = 0;
		for (int u = 0; u < na; ++u) dup |= ans[u]->part == c->part;
		if (!dup) ans[na++] = c;
	}
	if (na < R->n_parts) {
		gl_req_t rq = { GL_REQ_SEED, read, 0, 0, 0, 0, thr, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
		gl_queue(R, &rq);
		return GL_PENDING;
	}
	uint32_t *gcnt = (uint32_t *)gl_alloc(a, (uint32_t)len * sizeof(gl_mz_t)); /* the room of gl_collect_anchors' minimizers */
	if (!gcnt) return GL_ERR_ARENA_FULL;
	int nm = ans[0]->nm;
	for (int i = 0; i < nm; ++i) gcnt[i] = 0;
	for (int p = 0; p < na; ++p) {
		const uint32_t *c = (const uint32_t *)(R->pool + ans[p]->data);
		for (int i = 0; i < nm; ++i) gcnt[i] += c[i];
	}
	uint32_t total = 0;
	for (int i = 0; i < nm; ++i) if (gcnt[i] <= (uint32_t)thr) total += gcnt[i];
	if (total == 0) return 0;
	uint64_t *anc = (uint64_t *)gl_alloc(a, total * 8u);
	if (!anc) return GL_ERR_ARENA_FULL;
	int n = 0;
	for (int p = 0; p < na; ++p) {
		const uint64_t *src = (const uint64_t *)(R->pool + ans[p]->data + ((4u * (uint32_t)nm + 7u) & ~7u));
		for (int j = 0; j < ans[p]->status; ++j) {
			uint64_t v = src[j];
			if (gcnt[(v >> 10) & 1023] > (uint32_t)thr) continue;
			anc[n++] = (v >> 63) << 63 | ((v >> 20) & 0x7ffffffffffull) << 16 | (v & 1023);
		}
	}
	*anchors_out = anc;
	return n;
}
