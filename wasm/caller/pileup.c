/* Pileup evidence per position: the loop over every aligned base of every read. */
#include "caller.h"

/* 4-bit BAM base code -> 0..3 for A, C, G, T; -1 for anything else. */
static const int8_t nt16_idx[16] = { -1, 0, 1, -1, 2, -1, -1, -1, 3, -1, -1, -1, -1, -1, -1, -1 };

static inline uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

GC_EXPORT(gc_abi) int32_t gc_abi(void) { return (int32_t)sizeof(gc_pileup_t); }

GC_EXPORT(gc_pileup)
int32_t gc_pileup(const uint8_t *recs, const int32_t *off, const int32_t *mask, int32_t n,
                  int32_t start, int32_t end, int32_t min_bq, const float *lut, gc_pileup_t *pu)
{
	const float *l1 = lut, *l2 = lut + 100, *l3 = lut + 200;
	for (int32_t i = 0; i < n; i++) {
		const uint8_t *r = recs + off[i];
		const uint32_t block = rd32(r);
		const int32_t pos = (int32_t)rd32(r + 8);
		const uint32_t name_len = r[12], mapq = r[13];
		const uint32_t n_cig = rd16(r + 16), flag = rd16(r + 18);
		const int32_t l_seq = (int32_t)rd32(r + 20);
		const uint32_t cig_off = 36 + name_len;
		const uint32_t seq_off = cig_off + 4 * n_cig;
		const uint32_t qual_off = seq_off + (uint32_t)((l_seq + 1) >> 1);
		if (l_seq < 0 || qual_off + (uint32_t)l_seq > block + 4) return -1;
		const int reverse = (flag & 0x10) != 0;
		const int32_t lo = mask[2 * i], hi = mask[2 * i + 1];
		const uint32_t qcap = mapq < 99 ? mapq : 99;
		const double mq2 = (double)mapq * (double)mapq;
		int32_t rp = pos, qp = 0;
		for (uint32_t c = 0; c < n_cig; c++) {
			const uint32_t op_len = rd32(r + cig_off + 4 * c);
			const uint32_t op = op_len & 0xf;
			const int32_t len = (int32_t)(op_len >> 4);
			if (op == 0 || op == 7 || op == 8) { /* M, =, X */
				int32_t a = rp > start ? rp : start;
				int32_t b = rp + len < end ? rp + len : end;
				if (qp + len > l_seq) return -1;
				for (int32_t x = a; x < b; x++) {
					const int32_t qi = qp + (x - rp);
					const uint32_t code = (r[seq_off + (qi >> 1)] >> ((qi & 1) ? 0 : 4)) & 0xf;
					const int32_t k = x - start;
					pu->depth[k]++;
					pu->mq2[k] += mq2;
					const int bi = nt16_idx[code];
					if (bi < 0 || x < lo || x >= hi) continue;
					const uint32_t bq = r[qual_off + qi];
					if (bq < (uint32_t)min_bq || bq == 255) continue;
					const uint32_t q = bq < qcap ? bq : qcap;
					const int32_t j = k * 4 + bi;
					pu->count[j]++;
					if (!reverse) pu->forward[j]++;
					pu->s1[j] += l1[q];
					pu->s2[j] += l2[q];
					pu->s3[j] += l3[q];
				}
				rp += len;
				qp += len;
			} else if (op == 1 || op == 4) { /* I, S */
				qp += len;
			} else if (op == 2 || op == 3) { /* D, N */
				rp += len;
			}
		}
	}
	return 0;
}
