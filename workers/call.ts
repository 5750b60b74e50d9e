/**
 * Worker entry for variant calling: one task = one region of the genome (see
 * src/call/region.ts); returns the region's VCF data lines.
 */
import { callRegion, type CallRegionResult, type CallRegionTask } from '../src/call/region.js';

export default async function call(task: CallRegionTask): Promise<CallRegionResult> {
  return callRegion(task);
}
