/**
 * Defaults that the CLI's help shows, kept apart from the stages that use them: this module
 * imports nothing, so `genolake --help` and every light command load no stage code.
 */

/** Reads (pairs) per FASTQ shard, the unit of alignment work. */
export const DEFAULT_READS_PER_SHARD = 250_000;

/** Rows per Parquet row group: large groups suit Athena's scans (~64-128 MB of data each). */
export const DEFAULT_ROW_GROUP_ROWS = 1_000_000;
