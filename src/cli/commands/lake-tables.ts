/**
 * `genolake to-parquet`, `genolake query`, `genolake catalog`: the variant lake's tables
 * from the command line.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Lake } from '../../lake/types.js';
import { DEFAULT_ROW_GROUP_ROWS } from '../../pipeline/defaults.js';
import { sha256File } from '../../util/hash.js';
import { fmtBytes, fmtInt, lakeOption, openLakeOption, out, positiveInt, threadsOption } from './common.js';

// DuckDB, Arrow and Parquet load when a command needs them, not with every `genolake` call.
const refreshCatalog = async (lake: Lake, database?: string) => (await import('../../query/tables.js')).refreshCatalog(lake, database);

function printTable(rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return out('(no rows)');
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.min(40, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const fmt = (vals: string[]) => vals.map((v, i) => (v.length > widths[i] ? `${v.slice(0, widths[i] - 1)}…` : v.padEnd(widths[i]))).join('  ');
  out(fmt(cols));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out(fmt(cols.map((c) => cell(r[c]))));
  out(`(${rows.length} row${rows.length === 1 ? '' : 's'})`);
}

export async function runQuery(lake: Lake, sql: string, format: 'table' | 'json' | 'csv', experiment?: string): Promise<Record<string, unknown>[]> {
  const { openLakeSql, withExperimentTables } = await import('../../query/sql.js');
  const db = await openLakeSql(lake, experiment !== undefined ? { tables: withExperimentTables(experiment) } : {});
  try {
    const rows = await db.query(sql);
    if (format === 'json') out(JSON.stringify(rows, null, 2));
    else if (format === 'csv') {
      const cols = rows.length ? Object.keys(rows[0]) : [];
      const esc = (v: unknown) => {
        const s = v === null || v === undefined ? '' : String(v);
        return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
      };
      out(cols.join(','));
      for (const r of rows) out(cols.map((c) => esc(r[c])).join(','));
    } else printTable(rows);
    return rows;
  } finally {
    db.close();
  }
}

export function register(program: Command): void {
  threadsOption(lakeOption(program.command('to-parquet')))
    .description('load a VCF (annotated or not) into the lake: curated/variants/patient_id=<P>/chrom=<C>/*.parquet')
    .requiredOption('--vcf <file>', 'VCF, plain, gzip or bgzip')
    .requiredOption('--patient <id>', 'patient_id (partition)')
    .option('--sample <id...>', 'sample_id(s) to load: the VCF column of that name, or the only column')
    .option('--vcf-sample <name>', 'the VCF column to load as --sample when the names differ')
    .option('--run <id>', 'run_id of the rows (default: derived from the VCF content, so a re-load replaces)')
    .option('--reference <name>', 'reference build recorded in the rows (default: the VCF ##reference)')
    .option('--row-group-size <rows>', 'rows per Parquet row group', positiveInt, DEFAULT_ROW_GROUP_ROWS)
    .action(
      async (o: {
        lake: string;
        threads: number;
        vcf: string;
        patient: string;
        sample?: string[];
        vcfSample?: string;
        run?: string;
        reference?: string;
        rowGroupSize: number;
      }) => {
        const lake = await openLakeOption(o.lake);
        const vcfPath = resolve(o.vcf);
        const runId = o.run ?? `v${(await sha256File(vcfPath)).slice(0, 16)}`;
        const samples = o.sample?.map((s, i) => ({ sampleId: s, ...(i === 0 && o.vcfSample ? { column: o.vcfSample } : {}) }));
        const [{ createPool }, { vcfToParquet }] = await Promise.all([import('../../engine/pool.js'), import('../../stages/to-parquet.js')]);
        const pool = createPool({ threads: o.threads });
        try {
          const t0 = Date.now();
          const r = await vcfToParquet(
            { vcfPath, displayName: o.vcf, patientId: o.patient, samples, runId, reference: o.reference, rowGroupSize: o.rowGroupSize },
            { lake, runTask: (worker, _key, payload) => pool.run(worker, payload) },
          );
          await refreshCatalog(lake);
          const secs = (Date.now() - t0) / 1000;
          out(
            `${fmtInt(r.records)} records → ${fmtInt(r.rows)} rows (samples ${r.sampleIds.join(', ')}, run ${r.runId}) in ${r.files.length} file(s), ` +
              `${fmtBytes(r.parquetBytes)} Parquet from ${fmtBytes(r.vcfBytes)} VCF, ${secs.toFixed(1)} s (${fmtInt(Math.round(r.records / Math.max(secs, 1e-3)))} records/s)`,
          );
          if (r.removed.length) out(`replaced ${r.removed.length} older part(s) of the same run and samples`);
        } finally {
          await pool.close();
        }
      },
    );

  lakeOption(program.command('query'))
    .description('run SQL over the lake with DuckDB; tables: variants, patients, features (as in Athena)')
    .argument('<sql>', 'the query')
    .option('--format <table|json|csv>', 'output format', 'table')
    .option('--experiment <id>', "also the experiment's variants, as table experiment_variants (experimental/<id>/curated/variants/)")
    .action(async (sql: string, o: { lake: string; format: 'table' | 'json' | 'csv'; experiment?: string }) => {
      await runQuery(await openLakeOption(o.lake), sql, o.format, o.experiment);
    });

  lakeOption(program.command('features'))
    .description('build the per-patient feature table (curated/features/, CSV in curated/features_csv/) from the lake')
    .requiredOption('--panel <genes>', 'gene panel: comma-separated symbols, or @file with one symbol per line')
    .requiredOption('--callable-bases <n>', 'callable region size for TMB (bases)', positiveInt)
    .action(async (o: { lake: string; panel: string; callableBases: number }) => {
      const lake = await openLakeOption(o.lake);
      const panel = o.panel.startsWith('@')
        ? (await readFile(o.panel.slice(1), 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
        : o.panel.split(',').map((g) => g.trim()).filter(Boolean);
      const { buildFeatures } = await import('../../stages/features.js');
      const r = await buildFeatures(lake, { panel, callableBases: o.callableBases });
      await refreshCatalog(lake);
      out(`${r.patients} patient(s) × ${r.columns.length} columns → ${r.parquetKey}, ${r.csvKey}`);
    });

  lakeOption(program.command('catalog'))
    .description('regenerate _catalog/*.sql (Athena/Glue CREATE EXTERNAL TABLE with partition projection)')
    .option('--database <name>', 'Glue database name', 'genolake')
    .action(async (o: { lake: string; database: string }) => {
      const lake = await openLakeOption(o.lake);
      for (const k of await refreshCatalog(lake, o.database)) out(k);
    });
}
