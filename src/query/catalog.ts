/**
 * `_catalog/`: CREATE EXTERNAL TABLE statements for Athena / Glue, one file per table,
 * regenerated whenever a table gains partitions. Partition projection is on, with the
 * partition values the lake holds written as enums, so Athena needs no crawler and no
 * MSCK REPAIR, and a query over all patients still works.
 */
import { DataType, type Field, type Schema } from 'apache-arrow';
import type { Lake } from '../lake/types.js';

export const CATALOG_PREFIX = '_catalog/';
export const DEFAULT_DATABASE = 'genolake';

export interface CatalogTable {
  name: string;
  /** Lake prefix of the table root, e.g. curated/variants/ */
  prefix: string;
  /** Column name → Athena type, partition columns excluded (see `athenaColumns`). */
  columns: [string, string][];
  /** Partition columns in path order (strings). */
  partitions: string[];
  comment?: string;
}

export function athenaType(f: Field): string {
  const t = f.type;
  if (DataType.isUtf8(t) || DataType.isLargeUtf8(t) || DataType.isDictionary(t)) return 'string';
  if (DataType.isBool(t)) return 'boolean';
  if (DataType.isInt(t)) return t.bitWidth === 64 ? 'bigint' : t.bitWidth === 32 ? 'int' : t.bitWidth === 16 ? 'smallint' : 'tinyint';
  if (DataType.isFloat(t)) return t.precision === 0 || t.precision === 1 ? 'float' : 'double';
  if (DataType.isTimestamp(t)) return 'timestamp';
  if (DataType.isDate(t)) return 'date';
  if (DataType.isList(t)) return `array<${athenaType(t.children[0])}>`;
  return 'string';
}

/** Athena columns of an Arrow schema, without the partition columns. */
export function athenaColumns(schema: Schema, partitions: readonly string[] = []): [string, string][] {
  return schema.fields.filter((f) => !partitions.includes(f.name)).map((f) => [f.name, athenaType(f)]);
}

const DUCK_TO_ATHENA: Record<string, string> = {
  VARCHAR: 'string',
  BIGINT: 'bigint',
  HUGEINT: 'bigint',
  INTEGER: 'int',
  SMALLINT: 'smallint',
  TINYINT: 'tinyint',
  DOUBLE: 'double',
  FLOAT: 'float',
  BOOLEAN: 'boolean',
  DATE: 'date',
  TIMESTAMP: 'timestamp',
  'TIMESTAMP WITH TIME ZONE': 'timestamp',
};

/** Athena type of a DuckDB column type (DESCRIBE output). */
export function athenaTypeOfDuck(t: string): string {
  if (t.endsWith('[]')) return `array<${athenaTypeOfDuck(t.slice(0, -2))}>`;
  return DUCK_TO_ATHENA[t] ?? (t.startsWith('DECIMAL') ? t.toLowerCase() : 'string');
}

/** The S3 URI of a lake prefix; for a local lake, a placeholder to replace when the lake is copied to S3. */
export function lakeLocation(lake: Lake, prefix: string): string {
  const c = lake.config;
  if (c.kind === 's3') return `s3://${c.bucket}/${c.prefix ? `${c.prefix}/` : ''}${prefix}`;
  return `s3://\${LAKE_BUCKET_AND_PREFIX}/${prefix}`;
}

/** Partition values present in the lake for each partition column (sorted). */
export async function partitionValues(lake: Lake, t: CatalogTable): Promise<Map<string, string[]>> {
  const values = new Map<string, Set<string>>(t.partitions.map((p) => [p, new Set<string>()]));
  for await (const o of lake.list(t.prefix)) {
    if (!o.key.endsWith('.parquet')) continue;
    const segs = o.key.slice(t.prefix.length).split('/');
    t.partitions.forEach((p, i) => {
      const s = segs[i];
      if (s?.startsWith(`${p}=`)) values.get(p)!.add(decodeURIComponent(s.slice(p.length + 1)));
    });
  }
  return new Map([...values].map(([k, v]) => [k, [...v].sort()]));
}

function quoteSql(s: string): string {
  return s.replace(/'/g, "''");
}

/** The statement for one table; `values` lists each partition's values for projection. */
export function createTableSql(t: CatalogTable, location: string, values: Map<string, string[]>, database = DEFAULT_DATABASE): string {
  const cols = t.columns
    .filter(([n]) => !t.partitions.includes(n))
    .map(([n, ty]) => `  \`${n}\` ${ty}`)
    .join(',\n');
  const lines = [
    `-- genolake: ${t.comment ?? t.name}`,
    `-- Generated from the lake; regenerate with \`genolake catalog\`. Partition projection lists the values present when generated.`,
    `CREATE EXTERNAL TABLE IF NOT EXISTS \`${database}\`.\`${t.name}\` (`,
    cols,
    ')',
  ];
  if (t.partitions.length) lines.push(`PARTITIONED BY (${t.partitions.map((p) => `\`${p}\` string`).join(', ')})`);
  lines.push('STORED AS PARQUET', `LOCATION '${quoteSql(location)}'`);
  const props: [string, string][] = [['parquet.compression', 'ZSTD']];
  if (t.partitions.length) {
    props.push(['projection.enabled', 'true']);
    for (const p of t.partitions) {
      const v = values.get(p) ?? [];
      props.push([`projection.${p}.type`, 'enum'], [`projection.${p}.values`, v.length ? v.join(',') : '_none_']);
    }
    props.push(['storage.location.template', `${location}${t.partitions.map((p) => `${p}=\${${p}}`).join('/')}/`]);
  }
  lines.push(`TBLPROPERTIES (\n${props.map(([k, v]) => `  '${k}' = '${quoteSql(v)}'`).join(',\n')}\n);`);
  return `${lines.join('\n')}\n`;
}

/** Writes `_catalog/<table>.sql` for each table (each put is atomic). */
export async function writeCatalog(lake: Lake, tables: readonly CatalogTable[], database = DEFAULT_DATABASE): Promise<string[]> {
  const keys: string[] = [];
  for (const t of tables) {
    const sql = createTableSql(t, lakeLocation(lake, t.prefix), await partitionValues(lake, t), database);
    const key = `${CATALOG_PREFIX}${t.name}.sql`;
    await lake.put(key, sql);
    keys.push(key);
  }
  return keys;
}
