/**
 * SQL over the lake with DuckDB (@duckdb/node-api), with the table names Athena uses
 * (`variants`, `patients`, `features`; see the _catalog/ statements).
 *
 * A local lake is read in place. An S3 lake's tables are mirrored into a local cache
 * first (only objects whose size changed are fetched): DuckDB's S3 support is an
 * extension it downloads at run time, which an offline or locked-down machine cannot do.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Lake } from '../lake/types.js';
import { GenolakeError } from '../util/errors.js';
import type { Schema } from 'apache-arrow';
import { PATIENTS_SCHEMA } from '../metadata/patients.js';
import { VARIANTS_PREFIX, VARIANTS_SCHEMA } from '../variants/schema.js';
import { athenaType } from './catalog.js';
import { experimentPrefix } from '../manifest/experiment.js';

export interface LakeTable {
  name: string;
  /** Lake prefix holding the table's Parquet files. */
  prefix: string;
  /** Partition columns, in path order. */
  partitions: string[];
  /** Columns when the table has no file yet (name → DuckDB type), so queries still bind. */
  emptyColumns: [string, string][];
}

const DUCK_TYPES: Record<string, string> = {
  string: 'VARCHAR',
  bigint: 'BIGINT',
  int: 'INTEGER',
  smallint: 'SMALLINT',
  tinyint: 'TINYINT',
  double: 'DOUBLE',
  float: 'FLOAT',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMP',
  date: 'DATE',
  'array<string>': 'VARCHAR[]',
};

function columnsOf(schema: Schema, partitions: string[]): [string, string][] {
  return [
    ...schema.fields.filter((f) => !partitions.includes(f.name)).map((f) => [f.name, DUCK_TYPES[athenaType(f)] ?? 'VARCHAR'] as [string, string]),
    ...partitions.map((p) => [p, 'VARCHAR'] as [string, string]),
  ];
}

export const LAKE_TABLES: LakeTable[] = [
  {
    name: 'variants',
    prefix: VARIANTS_PREFIX,
    partitions: ['patient_id', 'chrom'],
    emptyColumns: columnsOf(VARIANTS_SCHEMA, ['patient_id', 'chrom']),
  },
  { name: 'patients', prefix: 'curated/patients/', partitions: ['patient_id'], emptyColumns: columnsOf(PATIENTS_SCHEMA, ['patient_id']) },
  { name: 'features', prefix: 'curated/features/', partitions: [], emptyColumns: [['patient_id', 'VARCHAR']] },
];

/**
 * The lake's tables plus an experiment's variants as `experiment_variants`, so a scientist
 * compares an experiment with production in one query.
 */
export function withExperimentTables(experimentId: string): LakeTable[] {
  const variants = LAKE_TABLES.find((t) => t.name === 'variants')!;
  return [...LAKE_TABLES, { ...variants, name: 'experiment_variants', prefix: `${experimentPrefix({ experiment_id: experimentId })}${VARIANTS_PREFIX}` }];
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export interface LakeSql {
  /** Rows as plain JS objects (BIGINT → number when safe, else string). */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** The directory DuckDB reads (the lake root, or the S3 mirror). */
  readonly root: string;
  close(): void;
}

async function hasParquet(lake: Lake, prefix: string): Promise<boolean> {
  for await (const o of lake.list(prefix)) if (o.key.endsWith('.parquet')) return true;
  return false;
}

/** Mirrors the tables' Parquet objects of an S3 lake into `dir` (size-checked, stale files removed). */
async function mirror(lake: Lake, dir: string, tables: readonly LakeTable[]): Promise<void> {
  for (const t of tables) {
    const want = new Set<string>();
    for await (const o of lake.list(t.prefix)) {
      if (!o.key.endsWith('.parquet')) continue;
      want.add(o.key);
      const local = join(dir, o.key);
      const have = await stat(local).catch(() => undefined);
      if (have?.size === o.size) continue;
      await mkdir(dirname(local), { recursive: true });
      const tmp = `${local}.part`;
      await pipeline(await lake.get(o.key), createWriteStream(tmp));
      await rename(tmp, local);
    }
    // Files gone from the lake must go from the mirror, or a replaced sample would count twice.
    const walk = async (d: string): Promise<void> => {
      const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (!want.has(p.slice(dir.length + 1).split('\\').join('/'))) await rm(p, { force: true });
      }
    };
    await walk(join(dir, t.prefix));
  }
}

function jsValue(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return v;
}

/** Opens DuckDB on the lake with one view per table. */
export async function openLakeSql(lake: Lake, opts: { cacheDir?: string; tables?: LakeTable[] } = {}): Promise<LakeSql> {
  const tables = opts.tables ?? LAKE_TABLES;
  let root: string;
  if (lake.config.kind === 'local') root = lake.config.root;
  else {
    const c = lake.config;
    root = opts.cacheDir ?? join(process.env.GENOLAKE_CACHE ?? join(homedir(), '.cache', 'genolake'), 's3', c.bucket, c.prefix || '_root');
    await mirror(lake, root, tables);
  }
  const instance = await DuckDBInstance.create(':memory:');
  const conn: DuckDBConnection = await instance.connect();
  for (const t of tables) {
    const glob = join(root, t.prefix, ...t.partitions.map(() => '*'), '*.parquet');
    const present = await hasParquet(lake, t.prefix);
    if (present) {
      const hive = t.partitions.length
        ? `, hive_partitioning = true, hive_types = {${t.partitions.map((p) => `'${p}': VARCHAR`).join(', ')}}`
        : '';
      await conn.run(`CREATE VIEW ${t.name} AS SELECT * FROM read_parquet(${sqlString(glob)}, union_by_name = true${hive})`);
    } else {
      const cols = t.emptyColumns.map(([n, ty]) => `CAST(NULL AS ${ty}) AS "${n}"`).join(', ');
      await conn.run(`CREATE VIEW ${t.name} AS SELECT ${cols} WHERE false`);
    }
  }
  return {
    root,
    async query(sql: string) {
      try {
        const reader = await conn.runAndReadAll(sql);
        return reader.getRowObjectsJS().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, jsValue(v)])));
      } catch (e) {
        throw new GenolakeError('QUERY_FAILED', (e as Error).message.split('\n')[0], { field: 'sql' }, { cause: e });
      }
    },
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
}
