/*
 * Chaining for short reads: anchors are sorted by strand and diagonal (ref - query)
 * and split where the diagonal jumps by more than chain_bw; within a group, anchors
 * further apart than max_gap on the reference start a new chain. The score of a chain
 * is the number of query bases its k-mers cover, which is what minimap2's sr chaining
 * amounts to on 50-250 bp reads with few indels.
 */
#include "gl.h"

/* In-place heap sort (no recursion, no allocation). */
void gl_sort_u64(uint64_t *a, int n) {
	for (int s = n / 2 - 1; s >= 0; --s) {
		int r = s;
		for (;;) {
			int c = 2 * r + 1;
			if (c >= n) break;
			if (c + 1 < n && a[c + 1] > a[c]) ++c;
			if (a[r] >= a[c]) break;
			uint64_t t = a[r]; a[r] = a[c]; a[c] = t; r = c;
		}
	}
	for (int end = n - 1; end > 0; --end) {
		uint64_t t = a[0]; a[0] = a[end]; a[end] = t;
		int r = 0;
		for (;;) {
			int c = 2 * r + 1;
			if (c >= end) break;
			if (c + 1 < end && a[c + 1] > a[c]) ++c;
			if (a[r] >= a[c]) break;
			t = a[r]; a[r] = a[c]; a[c] = t; r = c;
		}
	}
}

static int coverage(const uint64_t *key, int from, int to, int len, int k) {
	uint64_t bits[GL_MAX_READ / 64];
	int nw = (len + 63) >> 6, cov = 0;
	for (int i = 0; i < nw; ++i) bits[i] = 0;
	for (int i = from; i < to; ++i) {
		int qp = (int)(key[i] & 0xffff);
		for (int p = qp; p < qp + k && p < len; ++p) bits[p >> 6] |= 1ull << (p & 63);
	}
	for (int i = 0; i < nw; ++i) cov += __builtin_popcountll(bits[i]);
	return cov;
}

/*
 * anc: anchors from gl_collect_anchors (rev << 63 | r << 16 | qpos); rewritten in place
 * as sort keys rev << 63 | (r - qpos + 65536) << 16 | qpos. Chains come back sorted by
 * score, best first. Returns their number or GL_ERR_ARENA_FULL.
 */
int gl_chain(uint64_t *anc, int n, int len, int k, const gl_opts_t *o, gl_arena_t *a, gl_chain_t **chains_out) {
	*chains_out = 0;
	if (n <= 0) return 0;
	for (int i = 0; i < n; ++i) {
		uint64_t rev = anc[i] >> 63, r = (anc[i] >> 16) & 0x7fffffffffffull, qp = anc[i] & 0xffffu;
		anc[i] = rev << 63 | (r - qp + 65536u) << 16 | qp;
	}
	gl_sort_u64(anc, n);
	gl_chain_t *ch = (gl_chain_t *)gl_alloc(a, (uint32_t)n * sizeof(gl_chain_t));
	if (!ch) return GL_ERR_ARENA_FULL;
	int nc = 0, st = 0;
	for (int i = 1; i <= n; ++i) {
		int brk = i == n;
		if (!brk) {
			int64_t d0 = (int64_t)((anc[i - 1] >> 16) & 0x7fffffffffffull);
			int64_t d1 = (int64_t)((anc[i] >> 16) & 0x7fffffffffffull);
			brk = (anc[i] >> 63) != (anc[i - 1] >> 63) || d1 - d0 > o->chain_bw;
		}
		if (!brk) continue;
		int sc = coverage(anc, st, i, len, k);
		if (sc >= o->min_chain_score) {
			gl_chain_t *c = &ch[nc++];
			c->score = sc;
			c->rev = (int)(anc[st] >> 63);
			c->dmin = (int64_t)((anc[st] >> 16) & 0x7fffffffffffull) - 65536;
			c->dmax = (int64_t)((anc[i - 1] >> 16) & 0x7fffffffffffull) - 65536;
			c->n = i - st;
		}
		st = i;
	}
	/* sort by score, best first; ties keep diagonal order */
	if (nc > 1) {
		uint64_t *key = (uint64_t *)gl_alloc(a, (uint32_t)nc * 8u);
		gl_chain_t *tmp = (gl_chain_t *)gl_alloc(a, (uint32_t)nc * sizeof(gl_chain_t));
		if (!key || !tmp) return GL_ERR_ARENA_FULL;
		for (int i = 0; i < nc; ++i) key[i] = (uint64_t)(0x7fffffff - ch[i].score) << 32 | (uint32_t)i;
		gl_sort_u64(key, nc);
		for (int i = 0; i < nc; ++i) tmp[i] = ch[(uint32_t)key[i]];
		ch = tmp;
	}
	*chains_out = ch;
	return nc;
}
