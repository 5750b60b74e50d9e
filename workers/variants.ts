/**
 * Worker entry for the parquet stage: one task = one slice of a VCF → Parquet parts
 * (see src/variants/slice.ts). Bad input comes back as `{ ok: false, error }` so the
 * coordinator can number the failing record across slices.
 */
import { convertSlice, type SliceResult, type SliceTask } from '../src/variants/slice.js';

export default async function variants(task: SliceTask): Promise<SliceResult> {
  return convertSlice(task);
}
