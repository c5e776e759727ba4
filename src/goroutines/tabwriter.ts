// Go's text/tabwriter (flags 0, padding with tabs), which runtime/pprof's debug=1 profiles go through: tab-separated
// cells aligned in column blocks, each cell padded with tabs to its column's width rounded up to the tab width.
// A port of Writer.format/writeLines for exactly that configuration, so that text matches Go's byte for byte.

interface Cell {
  text: string;
  /** Width in runes, as utf8.RuneCountInString. */
  width: number;
}

export function tabwrite(text: string, minwidth: number, tabwidth: number, padding: number): string {
  // Every '\n' ends a line; the last cell of a line is the text after its last tab (possibly empty).
  const lines: Cell[][] = text.split('\n').map((l) => l.split('\t').map((t) => ({ text: t, width: runeCount(t) })));
  const out: string[] = [];
  const widths: number[] = [];

  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      const line = lines[i]!;
      let s = '';
      line.forEach((c, j) => {
        s += c.text;
        if (j < widths.length) s += pad(c.width, widths[j]!);
      });
      out.push(s);
    }
  };
  const pad = (textw: number, cellw: number): string => {
    const w = Math.ceil(cellw / tabwidth) * tabwidth;
    return '\t'.repeat(Math.ceil((w - textw) / tabwidth));
  };
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let row = line0; row < line1; row++) {
      if (column >= lines[row]!.length - 1) continue;
      // A cell in this column: the lines before it are done, a column block starts here.
      writeLines(line0, row);
      line0 = row;
      let width = minwidth;
      for (; row < line1 && column < lines[row]!.length - 1; row++) width = Math.max(width, lines[row]![column]!.width + padding);
      widths.push(width);
      format(line0, row);
      widths.pop();
      line0 = row; // the line that ended the block has no cell in this column: skipping it is right
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out.join('\n');
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}
