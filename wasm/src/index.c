/*
 * The reference index: the sequence (one byte per base) and a minimizer table.
 * Built here (inside wasm, on the memory the host prepared) and saved by the host
 * as one position-independent blob.
 *
 * Layout, all offsets relative to the gl_index_t at the start:
 *   header | contigs | seq | pos[n_pos] | keys[n_keys] | kst[n_keys+1] | pre[2^pre_bits+1]
 */
#include "gl.h"

static inline uint32_t align8(uint32_t x) { return (x + 7u) & ~7u; }

static uint32_t pre_bits_for(uint32_t n, uint32_t k) {
	uint32_t b = 1;
	while (b < 2 * k && (1u << b) < n / 4u) ++b; /* about four keys per prefix bucket */
	if (b > 24) b = 24;
	return b;
}

int gl_index_ok(const gl_index_t *idx) {
	return idx->magic == GL_INDEX_MAGIC && idx->version == GL_INDEX_VERSION && idx->k >= 5 && idx->k <= 31 &&
	       (idx->k & 1) && idx->w >= 1 && idx->w <= 64;
}

int gl_tid_of(const gl_index_t *idx, uint32_t gpos) { return gl_tid_in(gl_ctg(idx), idx->n_contigs, gpos); }

int gl_tid_in(const gl_contig_t *c, uint32_t n, uint32_t gpos) {
	int lo = 0, hi = (int)n - 1;
	while (lo < hi) { /* last contig with start <= gpos */
		int mid = (lo + hi + 1) >> 1;
		if (c[mid].start <= gpos) lo = mid; else hi = mid - 1;
	}
	return lo;
}

/* Number of minimizers of the whole reference (the host sizes the build memory from it). */
GL_EXPORT(gl_index_count)
int32_t gl_index_count(gl_index_t *idx) {
	if (!gl_index_ok(idx)) return GL_ERR_BAD_INDEX;
	const gl_contig_t *c = gl_ctg(idx);
	const uint8_t *s = gl_seq(idx);
	uint32_t n = 0;
	for (uint32_t i = 0; i < idx->n_contigs; ++i)
		n += (uint32_t)gl_sketch(s + c[i].start, (int)c[i].len, (int)idx->k, (int)idx->w, 0);
	return (int32_t)n;
}

/* Bytes from the header to the end of the finished index, for n minimizers (an upper bound). */
GL_EXPORT(gl_index_bound)
uint32_t gl_index_bound(const gl_index_t *idx, uint32_t n) {
	uint32_t off = align8(idx->seq_off + idx->seq_len);
	off = align8(off + 4u * n);
	off = align8(off + 8u * n);
	off = align8(off + 4u * (n + 1));
	off = align8(off + 4u * ((1u << pre_bits_for(n, idx->k)) + 1));
	return off;
}

/* LSD radix sort of minimizer records by key, 8 bits per pass; stable, so positions stay ascending. */
static gl_mz_t *radix_sort(gl_mz_t *a, gl_mz_t *tmp, uint32_t n, int bits) {
	uint32_t cnt[256];
	for (int sh = 0; sh < bits; sh += 8) {
		for (int i = 0; i < 256; ++i) cnt[i] = 0;
		for (uint32_t i = 0; i < n; ++i) ++cnt[(a[i].h >> sh) & 255];
		uint32_t sum = 0;
		for (int i = 0; i < 256; ++i) { uint32_t c = cnt[i]; cnt[i] = sum; sum += c; }
		for (uint32_t i = 0; i < n; ++i) tmp[cnt[(a[i].h >> sh) & 255]++] = a[i];
		gl_mz_t *t = a; a = tmp; tmp = t;
	}
	return a;
}

/*
 * Builds the minimizer table after the sequence. scratch must hold 2 * n records
 * (n from gl_index_count) and lie beyond gl_index_bound. Returns the total size.
 */
GL_EXPORT(gl_index_build)
int32_t gl_index_build(gl_index_t *idx, gl_mz_t *scratch, uint32_t n_expected) {
	if (!gl_index_ok(idx)) return GL_ERR_BAD_INDEX;
	const gl_contig_t *c = gl_ctg(idx);
	const uint8_t *s = gl_seq(idx);
	uint32_t n = 0;
	for (uint32_t i = 0; i < idx->n_contigs; ++i) {
		gl_mz_t *out = scratch + n;
		int m = gl_sketch(s + c[i].start, (int)c[i].len, (int)idx->k, (int)idx->w, out);
		for (int j = 0; j < m; ++j) out[j].pos += c[i].start;
		n += (uint32_t)m;
		if (n > n_expected) return GL_ERR_BAD_INPUT;
	}
	gl_mz_t *sorted = radix_sort(scratch, scratch + n, n, 2 * (int)idx->k);
	uint8_t *b = (uint8_t *)idx;
	idx->pos_off = align8(idx->seq_off + idx->seq_len);
	idx->n_pos = n;
	idx->key_off = align8(idx->pos_off + 4u * n);
	uint32_t *pos = (uint32_t *)(b + idx->pos_off);
	uint64_t *keys = (uint64_t *)(b + idx->key_off);
	uint32_t nk = 0;
	for (uint32_t i = 0; i < n; ++i) {
		pos[i] = sorted[i].pos << 1 | sorted[i].rev;
		if (i == 0 || sorted[i].h != sorted[i - 1].h) keys[nk++] = sorted[i].h;
	}
	idx->n_keys = nk;
	idx->kst_off = align8(idx->key_off + 8u * nk);
	uint32_t *kst = (uint32_t *)(b + idx->kst_off);
	nk = 0;
	for (uint32_t i = 0; i < n; ++i)
		if (i == 0 || sorted[i].h != sorted[i - 1].h) kst[nk++] = i;
	kst[nk] = n;
	idx->pre_bits = pre_bits_for(n, idx->k);
	idx->pre_off = align8(idx->kst_off + 4u * (nk + 1));
	uint32_t *pre = (uint32_t *)(b + idx->pre_off);
	uint32_t np = 1u << idx->pre_bits, j = 0;
	int kbits = 2 * (int)idx->k;
	for (uint32_t p = 0; p <= np; ++p) { /* pre[p] = first key whose top bits are >= p */
		while (j < nk && (uint32_t)(keys[j] >> (kbits - (int)idx->pre_bits)) < p) ++j;
		pre[p] = j;
	}
	idx->total_size = align8(idx->pre_off + 4u * (np + 1));
	return (int32_t)idx->total_size;
}
