/** The data simulator: reference genome, truth variants, paired reads, drop archives. */
export { Rng } from './rng.js';
export { buildReference, writeReference, repeatsBedLines, defaultContigs, defaultGenes, type ReferenceOptions, type SimReference, type ReferenceFiles } from './reference.js';
export { gff3Lines, cdsPositions, type GeneModel, type TranscriptModel, type GenePlan } from './genes.js';
export {
  simulateVariants,
  truthVcf,
  buildHaplotypes,
  toReference,
  mutationsIn,
  normalise,
  findGene,
  codingIntervals,
  type TruthVariant,
  type VariantKind,
  type VariantOptions,
  type DriverRequest,
  type DriverConsequence,
  type Haplotype,
} from './variants.js';
export { simulateReads, calibrateQualities, type ReadOptions, type ReadGroupFiles, type ReadStats } from './reads.js';
export { writeTarGz, type TarMember } from './tar.js';
export { bgzf } from './io.js';
export { simulateCohort, codingGeneNames, type CohortOptions, type CohortSummary, type CohortPatient, type DriverSpec, type CohortProgress } from './cohort.js';
