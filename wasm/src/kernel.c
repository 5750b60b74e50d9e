/* Batch entry point: the host calls gl_align_batch once per batch of reads. */
#include "gl.h"

GL_EXPORT(gl_abi)
int32_t gl_abi(void) { return (int32_t)(sizeof(gl_opts_t) << 16 | sizeof(gl_aln_t)); }

GL_EXPORT(gl_align_batch)
int32_t gl_align_batch(const gl_index_t *idx, const gl_opts_t *o, int32_t n, int32_t paired,
                       const uint8_t *seqs, const int32_t *offs, gl_aln_t *out,
                       uint8_t *arena, uint32_t arena_cap, gl_stats_t *st) {
	if (!gl_index_ok(idx)) return GL_ERR_BAD_INDEX;
	if (n < 0 || (paired && (n & 1))) return GL_ERR_BAD_INPUT;
	uint32_t scap = arena_cap / 4 < (8u << 20) ? arena_cap / 4 : (8u << 20);
	gl_arena_t scratch = { arena, scap, 0, 0 };
	gl_arena_t keep = { arena + scap, arena_cap - scap, 0, 0 };
	st->isize_mean = o->isize_mean; st->isize_sd = o->isize_sd; st->isize_n = 0; st->n_rescued = 0;
	gl_hits_t *hits = (gl_hits_t *)gl_alloc(&keep, (uint32_t)n * sizeof(gl_hits_t));
	uint8_t **codes = (uint8_t **)gl_alloc(&keep, (uint32_t)n * 2u * sizeof(uint8_t *));
	if (!hits || !codes) return GL_ERR_ARENA_FULL;
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
		int rc = gl_map_read(idx, o, f, r, L, &keep, &scratch, &hits[i]);
		if (rc == GL_ERR_ARENA_FULL && keep.oom) return GL_ERR_ARENA_FULL;
		if (rc < 0) { hits[i].n = 0; } /* scratch too small for this read: left unmapped */
	}
	if (!paired) {
		for (int i = 0; i < n; ++i) gl_single(idx, o, offs[i + 1] - offs[i], &hits[i], &out[i]);
		return 0;
	}
	gl_isize(idx, o, n / 2, hits, st);
	for (int p = 0; p < n / 2; ++p) {
		const uint8_t *const sq[2][2] = { { codes[4 * p], codes[4 * p + 1] }, { codes[4 * p + 2], codes[4 * p + 3] } };
		int len[2] = { offs[2 * p + 1] - offs[2 * p], offs[2 * p + 2] - offs[2 * p + 1] };
		if (!sq[0][0] || !sq[1][0]) { /* a read of unusable length: both handled as single ends */
			gl_hits_t empty = { 0, 0, 0, 0 };
			gl_hits_t h2[2] = { sq[0][0] ? hits[2 * p] : empty, sq[1][0] ? hits[2 * p + 1] : empty };
			int nr = 0;
			int rc = gl_pair(idx, o, sq, len, h2, &out[2 * p], &keep, &scratch, st, &nr);
			if (rc < 0) return rc;
			continue;
		}
		int rc = gl_pair(idx, o, sq, len, &hits[2 * p], &out[2 * p], &keep, &scratch, st, &st->n_rescued);
		if (rc < 0) return rc;
	}
	return 0;
}
