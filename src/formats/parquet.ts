/**
 * Arrow ⇄ Parquet through parquet-wasm (Rust's parquet crate compiled to WebAssembly), so
 * writing the lake needs no native module: a plain `npm ci` is enough on any platform.
 *
 * The helpers are deliberately generic: a caller builds an Arrow table with an explicit
 * schema (`rowsToTable`), and gets Parquet bytes back (`tableToParquet`). Columns keep the
 * Arrow types they were given, so every partition of a table has the same schema, which
 * Athena and DuckDB need to read the partitions as one table.
 */
import {
  RecordBatch,
  Schema,
  Struct,
  Table,
  makeData,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
  type TypeMap,
} from 'apache-arrow';
import * as parquet from 'parquet-wasm';

export type ParquetCompression = 'zstd' | 'snappy' | 'gzip' | 'none';

export interface ParquetWriteOptions {
  /** Default zstd: best size for the lake at a speed that does not matter for these volumes. */
  compression?: ParquetCompression;
  /** Rows per row group (default: parquet-wasm's default, 1 Mi rows). */
  rowGroupSize?: number;
  /** Written into the file footer's `created_by`. */
  createdBy?: string;
  /**
   * Per-column encodings instead of the default (dictionary, falling back to plain):
   * 'delta' (DELTA_BINARY_PACKED, for sorted or near-sorted integers) or 'plain', both
   * without a dictionary. For columns whose values are mostly distinct, where building a
   * dictionary costs time and then gets thrown away.
   */
  columnEncodings?: Record<string, 'delta' | 'plain'>;
}

const CODECS: Record<ParquetCompression, parquet.Compression> = {
  zstd: parquet.Compression.ZSTD,
  snappy: parquet.Compression.SNAPPY,
  gzip: parquet.Compression.GZIP,
  none: parquet.Compression.UNCOMPRESSED,
};

/**
 * Plain JS rows → an Arrow table with exactly `schema` (types and nullability), without
 * the dictionary encoding `tableFromArrays` would pick for strings. A value missing from
 * a row is null. Rows are one batch: call once per batch for large inputs.
 */
export function rowsToTable<T extends TypeMap>(schema: Schema<T>, rows: ReadonlyArray<Record<string, unknown>>): Table<T> {
  const children = schema.fields.map((f) => vectorFromArray(rows.map((r) => r[f.name] ?? null), f.type).data[0]);
  const data = makeData({ type: new Struct<T>(schema.fields), length: rows.length, nullCount: 0, children });
  return new Table<T>([new RecordBatch<T>(schema, data)]);
}

/** An Arrow table → the bytes of one Parquet file. */
export function tableToParquet(table: Table, opts: ParquetWriteOptions = {}): Uint8Array {
  const wasmTable = parquet.Table.fromIPCStream(tableToIPC(table, 'stream'));
  let builder = new parquet.WriterPropertiesBuilder().setCompression(CODECS[opts.compression ?? 'zstd']);
  if (opts.rowGroupSize !== undefined) builder = builder.setMaxRowGroupSize(opts.rowGroupSize);
  if (opts.createdBy !== undefined) builder = builder.setCreatedBy(opts.createdBy);
  for (const [col, enc] of Object.entries(opts.columnEncodings ?? {})) {
    builder = builder
      .setColumnDictionaryEnabled(col, false)
      .setColumnEncoding(col, enc === 'delta' ? parquet.Encoding.DELTA_BINARY_PACKED : parquet.Encoding.PLAIN);
  }
  // writeParquet consumes both the table and the properties (wasm-side memory is freed).
  return parquet.writeParquet(wasmTable, builder.build());
}

/** The bytes of one Parquet file → an Arrow table (whole file; for small tables and tests). */
export function parquetToTable(bytes: Uint8Array): Table {
  const wasmTable = parquet.readParquet(bytes);
  return tableFromIPC(wasmTable.intoIPCStream());
}
