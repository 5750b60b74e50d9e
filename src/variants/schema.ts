/**
 * The variants table: one row per sample × alternate allele, in
 * `curated/variants/patient_id=<P>/chrom=<C>/part-*.parquet`. patient_id and chrom live in
 * the partition path only (Hive style): Athena and DuckDB add them as columns.
 * Every file has exactly this schema, so all partitions read as one table.
 */
import { Field, Float64, Int32, Int64, Schema, Utf8 } from 'apache-arrow';

export const VARIANTS_TABLE = 'variants';
export const VARIANTS_PREFIX = 'curated/variants/';

/** name, Arrow type, Athena type, description (the README's column dictionary is built from this). */
export const VARIANT_COLUMNS = [
  ['sample_id', new Utf8(), 'string', 'sample id from the drop manifest'],
  ['run_id', new Utf8(), 'string', 'genolake run that produced the row'],
  ['pos', new Int64(), 'bigint', '1-based position of REF'],
  ['end', new Int64(), 'bigint', 'last reference base covered by REF (pos + len(ref) - 1)'],
  ['id', new Utf8(), 'string', "VCF ID: known-variant IDs (e.g. rs123; ';'-joined), null if '.'"],
  ['ref', new Utf8(), 'string', 'reference allele'],
  ['alt', new Utf8(), 'string', 'this alternate allele (multiallelic records are split)'],
  ['qual', new Float64(), 'double', 'QUAL (null if .)'],
  ['filter', new Utf8(), 'string', "FILTER ('PASS', or ';'-joined filter names)"],
  ['gt', new Utf8(), 'string', "genotype as written in the VCF, e.g. '0/1', '1|2'"],
  ['alt_count', new Int32(), 'int', 'copies of this alternate allele in gt (0, 1, 2; null if gt is missing)'],
  ['dp', new Int32(), 'int', 'FORMAT/DP (read depth)'],
  ['ad_ref', new Int32(), 'int', 'FORMAT/AD of the reference allele'],
  ['ad_alt', new Int32(), 'int', 'FORMAT/AD of this alternate allele'],
  ['vaf', new Float64(), 'double', 'ad_alt / sum(AD): variant allele fraction'],
  ['gq', new Int32(), 'int', 'FORMAT/GQ (genotype quality)'],
  ['gene', new Utf8(), 'string', 'gene symbol of the most severe consequence (annotated VCFs)'],
  ['transcript', new Utf8(), 'string', 'transcript of the most severe consequence'],
  ['consequence', new Utf8(), 'string', "Sequence Ontology term(s), '&'-joined, e.g. 'missense_variant'"],
  ['impact', new Utf8(), 'string', 'HIGH, MODERATE, LOW or MODIFIER (Ensembl VEP classes)'],
  ['hgvs_c', new Utf8(), 'string', 'HGVS coding change, e.g. c.123A>G'],
  ['hgvs_p', new Utf8(), 'string', 'HGVS protein change, e.g. p.Lys41Arg'],
  ['known', new Utf8(), 'string', 'JSON object of fields copied from known-variant databases'],
  ['reference', new Utf8(), 'string', 'reference build / name the reads were aligned to'],
  ['genolake_version', new Utf8(), 'string', 'genolake version that wrote the row'],
] as const;

export type VariantColumn = (typeof VARIANT_COLUMNS)[number][0];

export const VARIANTS_SCHEMA = new Schema(VARIANT_COLUMNS.map(([name, type]) => new Field(name, type, true)));

/**
 * Parquet encodings of the columns whose values are (nearly) all distinct: positions
 * ascend within a file, so delta-packed they are smaller and ~10× cheaper to write than
 * through a dictionary that overflows anyway (measured: benchmarks/parquet.mjs). Other
 * columns keep the writer's dictionary encoding.
 */
export const VARIANTS_PARQUET_ENCODINGS: Record<string, 'delta' | 'plain'> = { pos: 'delta', end: 'delta', id: 'plain' };

/** Partition columns, in path order. */
export const VARIANT_PARTITIONS = [
  ['patient_id', 'string', 'patient id from the drop manifest (partition)'],
  ['chrom', 'string', 'contig name (partition; URL-escaped in the path like Hive)'],
] as const;

/** Hive partition value escaping: anything outside [A-Za-z0-9._-] becomes %XX (as Hive does). */
export function partitionValue(v: string): string {
  return v.replace(/[^A-Za-z0-9._-]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

export function variantsPartition(patientId: string, chrom: string): string {
  return `${VARIANTS_PREFIX}patient_id=${partitionValue(patientId)}/chrom=${partitionValue(chrom)}/`;
}
