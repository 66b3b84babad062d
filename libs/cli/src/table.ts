/**
 * The CLI's tables: plain aligned columns under an upper-case header, as Kafka's own tools
 * (kafka-consumer-groups.sh --describe) and kubectl print them. No borders, no row index, no
 * quotes: `awk '{print $6}'`, `grep` and `sort -k` work on the output, which console.table's
 * `(index)` column, box-drawing characters and quoted strings broke. Hand-rolled rather than
 * cli-table3 because what is wanted is the absence of that library's main feature (borders), and
 * what remains is a dozen lines. Widths count code points; the cells are topic names, ids,
 * hosts and numbers, not wide (CJK) or combining characters.
 */

export type Cell = string | number | bigint | boolean | null | undefined;

/** A missing or empty cell: a dash keeps the columns countable for awk. */
const EMPTY = '-';

/** `logEndOffset` → `LOG-END-OFFSET`. */
export function headerOf(column: string): string {
  return column.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toUpperCase();
}

function text(cell: Cell): string {
  if (cell === null || cell === undefined || cell === '') return EMPTY;
  // A cell never breaks its row or its column.
  return String(cell).replace(/[\t\r\n]+/g, ' ');
}

const width = (s: string) => [...s].length;

/**
 * `rows` as aligned lines (each ending in a newline): the header, then one line per row, columns
 * two spaces apart, numbers right-aligned. `columns` picks and orders the cells; a table without
 * rows is its header alone.
 */
export function formatTable(columns: readonly string[], rows: ReadonlyArray<Readonly<Record<string, Cell>>>): string {
  const header = columns.map(headerOf);
  const body = rows.map((row) => columns.map((c) => text(row[c])));
  const numeric = columns.map((c) => rows.length > 0 && rows.every((row) => typeof row[c] === 'number' || typeof row[c] === 'bigint' || row[c] == null));
  const widths = columns.map((_, i) => Math.max(width(header[i]!), ...body.map((cells) => width(cells[i]!))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(widths[i]! - width(cell));
        return numeric[i] ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd() + '\n';
  return [header, ...body].map(line).join('');
}
