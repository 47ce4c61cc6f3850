// Reads a parquet file with a real, independent reader and writes what it found as JSON to OUT:
//   {"reader": ..., "numRows": N, "columns": [{"name", "type", "repetition", "logical"}...],
//    "rows": [[...]...]}
// Usage: node parquet_read.mjs hyparquet|parquetjs FILE OUT
// Cells come back as the reader decodes them (UTF-8 strings as strings, booleans as booleans),
// so the test compares them with what it wrote.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [, , which, file, out] = process.argv;

async function withHyparquet() {
  const { parquetMetadata, parquetReadObjects, parquetSchema } = await import('hyparquet');
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const metadata = parquetMetadata(buffer);
  const schema = parquetSchema(metadata);
  const columns = schema.children.map((child) => ({
    name: child.element.name,
    type: child.element.type,
    repetition: child.element.repetition_type,
    logical: child.element.logical_type ? child.element.logical_type.type : null,
  }));
  const objects = await parquetReadObjects({ file: buffer });
  const rows = objects.map((object) => columns.map((column) => object[column.name]));
  return { reader: 'hyparquet', numRows: Number(metadata.num_rows), columns, rows };
}

async function withParquetjs() {
  const require = createRequire(import.meta.url);
  const parquet = require('@dsnp/parquetjs');
  const reader = await parquet.ParquetReader.openFile(file);
  try {
    const fields = reader.getSchema().fieldList;
    const columns = fields.map((field) => ({
      name: field.name,
      type: field.primitiveType,
      repetition: field.repetitionType,
      logical: field.originalType || null,
    }));
    const cursor = reader.getCursor();
    const rows = [];
    for (let record = await cursor.next(); record; record = await cursor.next()) {
      rows.push(
        columns.map((column) => {
          const value = record[column.name];
          // parquetjs hands UTF8 columns back as strings, others as Buffers.
          return Buffer.isBuffer(value) ? value.toString('utf8') : value;
        }),
      );
    }
    return { reader: 'parquetjs', numRows: Number(reader.getRowCount()), columns, rows };
  } finally {
    await reader.close();
  }
}

try {
  const result = which === 'hyparquet' ? await withHyparquet() : await withParquetjs();
  writeFileSync(out, JSON.stringify(result));
} catch (error) {
  process.stderr.write(`${which}: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
