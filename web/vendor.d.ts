// The parts of the vendored scripts (served as /assets/vendor.js) the page uses: d3-selection's select and
// d3-flame-graph's chart, both globals of their UMD builds.

interface FlameNodeData {
  name: string;
  value: number;
  children: FlameNodeData[];
  /** d3-flame-graph colours by it: 'kernel' orange, 'inlined' aqua, any other non-empty value red. */
  libtype?: string;
  kind: string;
}

interface FlameNode {
  data: FlameNodeData;
  value: number;
  x0: number;
  x1: number;
  depth: number;
}

interface FlameChart {
  /** Draws into a selection holding the tree (d3's selection.call). */
  (s: D3Selection): void;
  width(w: number): FlameChart;
  cellHeight(h: number): FlameChart;
  minFrameSize(px: number): FlameChart;
  transitionDuration(ms: number): FlameChart;
  sort(enabled: boolean): FlameChart;
  selfValue(enabled: boolean): FlameChart;
  inverted(enabled: boolean): FlameChart;
  title(t: string): FlameChart;
  setLabelHandler(f: (d: FlameNode) => string): FlameChart;
  setDetailsElement(el: HTMLElement): FlameChart;
  setSearchMatch(f: (d: FlameNode, term: string) => boolean): FlameChart;
  setSearchHandler(f: (results: FlameNode[], sum: number, total: number) => void): FlameChart;
  setColorMapper(f: (d: FlameNode, original: string) => string): FlameChart;
  search(term: string): void;
  clear(): void;
  resetZoom(): void;
  destroy(): FlameChart;
}

interface D3Selection {
  datum(d: unknown): D3Selection;
  call(f: (s: D3Selection) => void): D3Selection;
}

declare const d3: { select(el: Element): D3Selection };
declare const flamegraph: { default(): FlameChart };
