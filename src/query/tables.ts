/** The lake's tables as the catalog describes them, and refreshing `_catalog/`. */
import type { Lake } from '../lake/types.js';
import { PATIENTS_SCHEMA } from '../metadata/patients.js';
import { FEATURES_PREFIX } from '../stages/features.js';
import { VARIANTS_PREFIX, VARIANTS_SCHEMA } from '../variants/schema.js';
import { athenaColumns, athenaTypeOfDuck, writeCatalog, DEFAULT_DATABASE, type CatalogTable } from './catalog.js';
import { openLakeSql } from './sql.js';

export function coreCatalogTables(): CatalogTable[] {
  return [
    {
      name: 'variants',
      prefix: VARIANTS_PREFIX,
      columns: athenaColumns(VARIANTS_SCHEMA),
      partitions: ['patient_id', 'chrom'],
      comment: 'one row per sample × alternate allele',
    },
    {
      name: 'patients',
      prefix: 'curated/patients/',
      columns: athenaColumns(PATIENTS_SCHEMA),
      partitions: ['patient_id'],
      comment: 'one row per patient (provider metadata)',
    },
  ];
}

/** Every table, the features table included when it exists (its columns follow the gene panel). */
export async function catalogTables(lake: Lake): Promise<CatalogTable[]> {
  const tables = coreCatalogTables();
  if (await lake.exists(`${FEATURES_PREFIX}part-0.parquet`)) {
    const db = await openLakeSql(lake);
    try {
      const cols = await db.query('DESCRIBE SELECT * FROM features');
      tables.push({
        name: 'features',
        prefix: FEATURES_PREFIX,
        columns: cols.map((c) => [String(c.column_name), athenaTypeOfDuck(String(c.column_type))]),
        partitions: [],
        comment: 'one row per patient: model features (see the README column dictionary)',
      });
    } finally {
      db.close();
    }
  }
  return tables;
}

export async function refreshCatalog(lake: Lake, database = DEFAULT_DATABASE): Promise<string[]> {
  return writeCatalog(lake, await catalogTables(lake), database);
}
