/*
 * genolake aligner kernel: the one header stating the C API shared by index.c,
 * seed.c, chain.c, align.c, mapq.c, pair.c and kernel.c.
 *
 * Built freestanding for wasm32 (no libc): every function works on memory the
 * caller hands it, so several instances (one per worker thread) can share one
 * imported WebAssembly.Memory. There is no mutable static data anywhere; the only
 * statics are constant tables.
 *
 * Memory map (decided by the TypeScript host, src/align/kernel.ts):
 *   [0, 1 MiB)                 static data + the bootstrap stack (unused after init)
 *   [INDEX_BASE, +index)       the shared index (gl_index_t + arrays), read-only while aligning
 *   slot s = [slotBase + s*slotSize, +slotSize), one per worker, never touched by others:
 *       [0, STACK)             that instance's C stack (host sets __stack_pointer to its top)
 *       [STACK, slotSize)      the worker's batch arena: input reads, outputs, scratch
 * All offsets inside the index are relative to the index base, so a saved index blob
 * can be loaded at any address.
 * A split index (below) has one such memory per part, whose slots also hold the requests
 * a part answers and its answers, and per thread a private driver memory with one slot
 * of the same layout (no index) followed by the answers it has collected.
 */
#ifndef GL_H
#define GL_H

#include <stdint.h>
#include <stddef.h>

#define GL_INDEX_MAGIC 0x58444c47u /* "GLDX" little endian */
#define GL_INDEX_VERSION 1u

#define GL_EXPORT(name) __attribute__((export_name(#name)))

/* ---- errors returned by exported functions (negative) ---- */
#define GL_ERR_BAD_INDEX  (-1)
#define GL_ERR_ARENA_FULL (-2)
#define GL_ERR_BAD_INPUT  (-3)

/* ---- index ---- */
typedef struct { uint32_t start, len; } gl_contig_t; /* start: offset in the concatenated sequence */

typedef struct {
	uint32_t magic, version, k, w;
	uint32_t n_contigs, ctg_off;  /* gl_contig_t[n_contigs] */
	uint32_t seq_off, seq_len;    /* uint8 codes 0..3 = ACGT, 4 = N */
	uint32_t pos_off, n_pos;      /* uint32 (global_pos << 1 | strand), grouped by key */
	uint32_t key_off, n_keys;     /* uint64 sorted distinct minimizer hashes */
	uint32_t kst_off;             /* uint32[n_keys + 1]: start of each key's positions */
	uint32_t pre_off, pre_bits;   /* uint32[2^pre_bits + 1]: key range per top hash bits */
	uint32_t total_size;          /* bytes of the whole blob, header included */
	uint32_t reserved[4];
} gl_index_t;

/* ---- bump arena (per worker, per batch) ---- */
/* peak: the highest end of an allocation asked for (0xffffffff once one failed), so a split
 * index's part can tell the driver what an extension costs the direct path's arena */
typedef struct { uint8_t *base; uint32_t cap, used; int32_t oom; uint32_t peak; } gl_arena_t;

static inline void *gl_alloc(gl_arena_t *a, uint32_t n) {
	n = (n + 7u) & ~7u;
	if (a->oom || n > a->cap - a->used) { a->oom = 1; a->peak = 0xffffffffu; return 0; }
	void *p = a->base + a->used;
	a->used += n;
	if (a->used > a->peak) a->peak = a->used;
	return p;
}

/* ---- parameters (int32 each, filled by the host; layout mirrored in kernel.ts) ---- */
typedef struct {
	int32_t a, b, o, e;           /* match, mismatch, gap open, gap extend (gap of l costs o + l*e) */
	int32_t clip5, clip3;         /* clipping penalties */
	int32_t band;                 /* extension band half-width around the chain's diagonals */
	int32_t max_occ;              /* skip minimizers with more reference occurrences */
	int32_t max_gap;              /* chaining: largest gap between anchors */
	int32_t chain_bw;             /* chaining: largest diagonal change between anchors */
	int32_t min_chain_score;
	int32_t max_ext;              /* chains extended per read */
	int32_t min_score;            /* minimum output alignment score (-T) */
	int32_t pen_unpaired;
	int32_t isize_mean, isize_sd; /* prior used when a batch has too few confident pairs */
	int32_t max_rescue;           /* hits per read whose mate window is searched */
	int32_t simd;                 /* 1: SIMD128 extension (0: the scalar reference, for tests) */
	int32_t all_hits;             /* 1: list the other hits over the primary's part of the read (gl_sec_t) */
} gl_opts_t;

/* ---- one candidate alignment of a read ---- */
typedef struct {
	int32_t score;                /* ranking score: alignment score minus clipping penalties */
	int32_t as;                   /* alignment score of the aligned part (the AS tag) */
	int32_t rev, tid;
	uint32_t gstart, gend;        /* global reference span [gstart, gend) */
	int32_t qb, qe;               /* aligned query span (in the read's aligned orientation) */
	int32_t n_cigar;
	uint32_t *cigar;              /* len << 4 | op (0 M, 1 I, 2 D, 4 S), soft clips included */
	int32_t cov;                  /* query bases covered by the seeds of the chain it came from */
	int32_t alt_cov;              /* best coverage of a chain on other diagonals (0: none) */
	int32_t tmm;                  /* split index: tandem_sub's mismatch count, computed by the part */
	int64_t alt_diag;             /* that chain's diagonal (reference - query, global) */
} gl_hit_t;

typedef struct {
	int32_t n;
	gl_hit_t *h;                  /* sorted by score, best first */
	int32_t n_best;               /* hits whose score equals the best one */
	int32_t sub;                  /* best score of a hit at another place (0: none) */
} gl_hits_t;

/* ---- per-read result handed back to the host (96 bytes; mirrored in src/align/kernel.ts) ---- */
typedef struct {
	int32_t flag, tid, pos, mapq;  /* pos: 0-based on contig tid; tid -1 when unplaced */
	int32_t mtid, mpos, tlen, rev; /* rev: SEQ must be reverse-complemented for output */
	int32_t as, xs, n_cigar;       /* xs: -1 when there is no suboptimal hit */
	uint32_t cigar_ptr;            /* absolute address of uint32 ops (BAM encoding) */
	int32_t mate_n_cigar;          /* the mate's CIGAR (for MC): */
	uint32_t mate_cigar_ptr;
	int32_t gpos, hit;             /* gpos: global position (into the index sequence); hit: its index in the read's hits */
	/* a supplementary alignment (chimeric read: another part of the read aligned elsewhere) */
	int32_t sup_tid, sup_pos, sup_rev, sup_mapq;   /* sup_tid -1: none */
	int32_t sup_as, sup_n_cigar;
	uint32_t sup_cigar_ptr;
	int32_t sup_gpos;
} gl_aln_t;

typedef struct {
	int32_t isize_mean, isize_sd, isize_n, n_rescued;
	int32_t n_sec;                 /* all_hits: secondary alignments listed at sec */
	uint32_t sec;
} gl_stats_t;

/* A secondary alignment (all_hits): another hit over the same part of read `read` as its
 * primary alignment, with a score of at least min_score (mirrored in kernel.ts). */
typedef struct {
	int32_t read, tid, pos, rev, as, n_cigar;
	uint32_t cigar_ptr;
	int32_t gpos;
} gl_sec_t;

/*
 * ---- split index: one kernel instance per part, phases joined by the host ----
 * A reference too big for one wasm32 memory is split by whole contigs into parts, each
 * in its own memory. Global coordinates are those of the unsplit reference (the parts'
 * sequences concatenated in order), so every decision of the per-read logic is made on
 * exactly the values the single-part run sees. The per-read logic (seed merging,
 * chaining, chain selection, hit merging, insert size, rescue decisions, pairing, MAPQ)
 * runs in a driver instance that holds no index: everything it needs from the reference
 * comes through four questions (gl_req_t), answered by the part that holds the data:
 *   SEED   read i: per minimizer of the read its occurrence count in this part, and the
 *          anchors of those at or below threshold c (global positions). The driver adds
 *          the counts of all parts, so max_occ filters on whole-genome counts.
 *   CHAIN  extension of a chain (rev, dmin, dmax on contig tid) of read i, as the direct
 *          path does it (ungapped fast path, else banded DP), with the scratch bytes it
 *          took, so the driver's arena accounting stays that of the direct path.
 *   WINDOW banded DP of read i against [a, b) of contig tid, band [c, d] (mate rescue).
 * Hits come back with their tandem mismatch count (tmm), the one other sequence lookup.
 * The driver replays a batch from the start with the answers it has (gl_drive_batch);
 * a question without an answer is queued and the read's result withheld; the host asks
 * the parts and calls again until nothing is queued. With one part the same code runs in
 * direct mode (answers computed on the spot from the index), which is gl_align_batch.
 */
enum { GL_REQ_SEED = 1, GL_REQ_CHAIN = 2, GL_REQ_WINDOW = 3 };
#define GL_PENDING (-100)
typedef struct {
	int32_t kind, read, rev, tid;  /* read: index in the batch of the read aligned; tid global */
	int64_t a, b;                  /* CHAIN: dmin, dmax; WINDOW: ws, we (global) */
	int32_t c, d;                  /* SEED: occurrence threshold; WINDOW: dlo, dhi */
	int32_t part;                  /* set by the host: the part that answered */
	int32_t status;                /* SEED: anchors; CHAIN/WINDOW: 0 a hit, < 0 none */
	int32_t nm;                    /* SEED: minimizers of the read */
	uint32_t peak, net;            /* CHAIN: scratch bytes the direct path needs at most / keeps */
	uint32_t data, len;            /* answer: byte offset from the pool base, bytes */
	int32_t pad;
} gl_req_t; /* 72 bytes, mirrored in src/align/kernel.ts */

/* Driver state: the host fills it before each gl_drive_batch call (mirrored in kernel.ts). */
typedef struct {
	int32_t k, w, n_parts, n_contigs;
	uint32_t seq_len;              /* bases of the whole reference (< 2^32) */
	uint32_t ctg;                  /* gl_contig_t[n_contigs], global starts */
	uint32_t cache, n_cache;       /* answered requests (gl_req_t) */
	uint32_t pool;                 /* base of the answers' payloads */
	uint32_t reqs, cap_reqs;       /* out: requests queued by this call */
	int32_t n_reqs;
	uint32_t index_area;           /* int32[n + 1 + n_cache] of room for grouping answers by read */
	/* hits of reads already mapped in an earlier call for this batch (kept across calls;
	 * the host zeroes memo_idx at a batch's start): memo_idx[i] = offset + 1 in memo, or 0 */
	uint32_t memo_idx, memo, memo_cap, memo_used;
} gl_drive_t; /* 18 words */

/* How the per-read logic reaches the reference: directly (idx) or through answers. */
typedef struct {
	const gl_index_t *idx;         /* direct mode; 0: replay */
	int32_t k, w, n_parts, pending;
	uint32_t seq_len, n_contigs;
	const gl_contig_t *ctg;
	const gl_req_t *cache;
	const int32_t *by_read, *order; /* answers of read i: order[by_read[i] .. by_read[i+1]) */
	const uint8_t *pool;
	gl_req_t *reqs;
	int32_t n_reqs, cap_reqs, overflow;
	int32_t *memo_idx;
	uint8_t *memo;
	uint32_t memo_cap, memo_used;
} gl_ref_t;

/* ---- internal API ---- */
/* seed.c */
typedef struct { uint64_t h; uint32_t pos, rev; } gl_mz_t;
extern const uint8_t gl_nt4[256];
int gl_sketch(const uint8_t *s, int len, int k, int w, gl_mz_t *out);
/* anchors: rev << 63 | global_ref_pos << 16 | qpos */
int gl_collect_anchors(const gl_index_t *idx, const uint8_t *q, int len, int max_occ,
                       gl_arena_t *a, uint64_t **anchors_out);
/* SEED answer of one part: counts[nm] then anchors rev << 63 | pos << 20 | mi << 10 | qpos */
int gl_seed_part(const gl_index_t *idx, const uint8_t *q, int len, int thr, uint32_t base,
                 gl_arena_t *scratch, gl_arena_t *pool, int *nm_out);
/* queues a request (replay mode) and marks the current read pending */
void gl_queue(gl_ref_t *R, const gl_req_t *rq);
/* anchors of read from the SEED answers of all parts (replay mode) */
int gl_seed_merge(gl_ref_t *R, int read, int len, int thr, gl_arena_t *a, uint64_t **anchors_out);
/* chain.c: anchors grouped into chains along nearly constant diagonals */
typedef struct { int32_t score, rev; int64_t dmin, dmax; int32_t n; } gl_chain_t;
int gl_chain(uint64_t *anc, int n, int len, int k, const gl_opts_t *o, gl_arena_t *a, gl_chain_t **chains_out);
void gl_sort_u64(uint64_t *a, int n);
/* align.c: banded affine-gap alignment of the whole query against ref[0, wlen), query
 * ends soft-clipped at a penalty, reference ends free; band: dlo <= j - i <= dhi
 * (j reference index, i query index). Fills score, as, qb, qe, cigar; *rbeg = first
 * reference base used. Returns 0, or < 0 when nothing aligns / arena is full. */
int gl_extend(const uint8_t *q, int L, const uint8_t *ref, int wlen, int dlo, int dhi,
              const gl_opts_t *o, gl_arena_t *a, gl_hit_t *hit, uint32_t *rbeg);
/* index.c */
int gl_index_ok(const gl_index_t *idx);
int gl_tid_of(const gl_index_t *idx, uint32_t gpos);
int gl_tid_in(const gl_contig_t *c, uint32_t n, uint32_t gpos);
static inline const uint8_t *gl_seq(const gl_index_t *idx) { return (const uint8_t *)idx + idx->seq_off; }
static inline const gl_contig_t *gl_ctg(const gl_index_t *idx) { return (const gl_contig_t *)((const uint8_t *)idx + idx->ctg_off); }
/* mapq.c */
int gl_mapq(int s1, int s2, int L, const gl_opts_t *o);
double gl_log(double x);
/* pair.c (read: the read's index in the batch; GL_PENDING: an answer is missing, replay mode) */
int gl_map_read(gl_ref_t *R, const gl_opts_t *o, int read, const uint8_t *fwd, const uint8_t *rc, int L,
                gl_arena_t *keep, gl_arena_t *scratch, gl_hits_t *out);
int gl_pair(gl_ref_t *R, const gl_opts_t *o, const int read[2], const uint8_t *const seq[2][2], const int len[2],
            gl_hits_t hits[2], gl_aln_t out[2], gl_arena_t *keep, gl_arena_t *scratch, const gl_stats_t *st,
            int *n_rescued);
void gl_single(gl_ref_t *R, const gl_opts_t *o, int L, const gl_hits_t *h, gl_aln_t *out);
void gl_isize(const gl_opts_t *o, int n_pairs, const gl_hits_t *hits, gl_stats_t *st);
/* the secondary alignments of a read (all_hits), written to out if given; returns their number */
int gl_secondaries(const gl_ref_t *R, const gl_opts_t *o, int read, int L, const gl_hits_t *h, const gl_aln_t *a, gl_sec_t *out);
/* answers one CHAIN or WINDOW request on a part (local coordinates from base, first_tid) */
int gl_serve_hit(const gl_index_t *idx, const gl_opts_t *o, uint32_t base, int first_tid, gl_req_t *rq,
                 const uint8_t *fwd, const uint8_t *rc, int L, gl_arena_t *scratch, gl_arena_t *pool);
int gl_batch(gl_ref_t *R, const gl_opts_t *o, int32_t n, int32_t paired, const uint8_t *seqs, const int32_t *offs,
             gl_aln_t *out, uint8_t *arena, uint32_t arena_cap, gl_stats_t *st);

/* ---- exported entry points (kernel.c) ----
 * gl_align_batch: aligns n reads (paired: reads 2i and 2i+1 are mates) whose sequences
 * (ASCII) are seqs[offs[i], offs[i+1]); writes out[n]. arena/arena_cap: the worker's
 * scratch space; CIGARs in out point into it and stay valid until the next call.
 * Returns 0 or a GL_ERR_* code. */
int32_t gl_align_batch(const gl_index_t *idx, const gl_opts_t *o, int32_t n, int32_t paired,
                       const uint8_t *seqs, const int32_t *offs, gl_aln_t *out,
                       uint8_t *arena, uint32_t arena_cap, gl_stats_t *st);
int32_t gl_abi(void); /* sizeof checks: (sizeof(gl_opts_t) << 16) | sizeof(gl_aln_t) */
/* gl_drive_batch: gl_align_batch for a split index, in a driver instance (no index);
 * returns 0 when out is complete, 1 when requests were queued (dv->n_reqs), or < 0. */
int32_t gl_drive_batch(const gl_opts_t *o, int32_t n, int32_t paired, const uint8_t *seqs, const int32_t *offs,
                       gl_aln_t *out, uint8_t *arena, uint32_t arena_cap, gl_stats_t *st, gl_drive_t *dv);
/* gl_serve: a part answers reqs[0, n_req) for the batch seqs/offs; answers go to pool
 * (data offsets relative to pool). Returns the requests answered (a prefix; fewer when
 * the pool is full, at least 1 unless one answer alone does not fit: GL_ERR_ARENA_FULL). */
int32_t gl_serve(const gl_index_t *idx, const gl_opts_t *o, uint32_t base, int32_t first_tid, const uint8_t *seqs,
                 const int32_t *offs, gl_req_t *reqs, int32_t n_req, uint8_t *arena, uint32_t arena_cap,
                 uint8_t *pool, uint32_t pool_cap, uint32_t *pool_used);

#define GL_MAX_READ 1024

/* small helpers */
static inline int gl_max(int a, int b) { return a > b ? a : b; }
static inline int gl_min(int a, int b) { return a < b ? a : b; }
void gl_memcpy(void *d, const void *s, uint32_t n);
void gl_memset(void *d, int c, uint32_t n);

#endif
