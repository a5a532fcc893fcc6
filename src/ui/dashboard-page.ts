/**
 * The operator dashboard's page script (/_edge/ui/dashboard.js): reads the node's live numbers
 * from the server-sent event stream, one event a second, and draws them; the chart with uPlot
 * (loaded before this script from the project's own copy, /_edge/ui/uplot.js).
 */
interface Snapshot {
  at: number;
  series: { at: number; hit: number; miss: number; stale: number; other: number }[];
  totals: { requests: number; bytesOut: number; bytesOriginal: number };
  hitRatio: number | null;
  latencyMs: { hit: { p50: number | null; p99: number | null }; miss: { p50: number | null; p99: number | null } };
  formats: Record<string, number>;
  topByRequests: { source: string; requests: number; saved: number }[];
  topBySaved: { source: string; requests: number; saved: number }[];
  purges: { at: number; what: string; purged: number }[];
  queue: { running: number; waiting: number };
  disk: { bytes: number; budget: number; entries: number };
  nodes: { name: string; seen: number; startedAt: number; requests: number }[];
}

interface UPlotLike {
  setData(data: number[][]): void;
  setSize(size: { width: number; height: number }): void;
}
declare const uPlot: new (opts: unknown, data: number[][], target: HTMLElement) => UPlotLike;

const $ = (id: string) => document.getElementById(id)!;

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

const ms = (v: number | null) => (v === null ? '–' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);

function rows(tbody: HTMLElement, items: [string, string][]): void {
  tbody.replaceChildren(...items.map(([a, b]) => {
    const tr = document.createElement('tr');
    for (const text of [a, b]) tr.append(Object.assign(document.createElement('td'), { textContent: text }));
    return tr;
  }));
}

let chart: UPlotLike | undefined;

function draw(s: Snapshot): void {
  const last = s.series.at(-2) ?? s.series.at(-1)!;
  $('rps').textContent = String(last.hit + last.miss + last.stale + last.other);
  $('requests').textContent = String(s.totals.requests);
  $('hit-ratio').textContent = s.hitRatio === null ? '–' : `${(s.hitRatio * 100).toFixed(1)} %`;
  const saved = s.totals.bytesOriginal - s.totals.bytesOut;
  $('saved').textContent = s.totals.bytesOriginal === 0 ? '–' : `${bytes(saved)} (${((saved / s.totals.bytesOriginal) * 100).toFixed(1)} % of ${bytes(s.totals.bytesOriginal)})`;
  $('hit-latency').textContent = `${ms(s.latencyMs.hit.p50)} / ${ms(s.latencyMs.hit.p99)}`;
  $('miss-latency').textContent = `${ms(s.latencyMs.miss.p50)} / ${ms(s.latencyMs.miss.p99)}`;
  $('queue').textContent = `${s.queue.running} / ${s.queue.waiting}`;
  $('disk').textContent = `${bytes(s.disk.bytes)} / ${bytes(s.disk.budget)} (${s.disk.entries} entries)`;

  const total = Object.values(s.formats).reduce((n, v) => n + v, 0);
  $('formats').replaceChildren(...Object.entries(s.formats).sort((a, b) => b[1] - a[1]).map(([type, n]) => {
    const li = document.createElement('li');
    const meter = Object.assign(document.createElement('meter'), { min: 0, max: total, value: n });
    meter.setAttribute('aria-label', `${type}: ${n} of ${total}`);
    li.append(Object.assign(document.createElement('span'), { textContent: type.replace(/^image\//, '') }), meter, Object.assign(document.createElement('span'), { textContent: String(n) }));
    return li;
  }));
  rows($('top-requests'), s.topByRequests.map((r) => [r.source, String(r.requests)]));
  rows($('top-saved'), s.topBySaved.filter((r) => r.saved > 0).map((r) => [r.source, bytes(r.saved)]));
  rows($('nodes'), s.nodes.map((n) => [n.name, String(n.requests)]));
  const purges = s.purges.map((p) => `${new Date(p.at).toLocaleTimeString()}: ${p.what} (${p.purged} entries)`);
  $('purges').replaceChildren(...(purges.length ? purges : ['none since this node started']).map((text) => Object.assign(document.createElement('li'), { textContent: text })));

  const data = [s.series.map((x) => x.at), s.series.map((x) => x.hit), s.series.map((x) => x.miss), s.series.map((x) => x.stale), s.series.map((x) => x.other)];
  const box = $('chart');
  const size = { width: box.clientWidth, height: 220 };
  if (!chart) {
    chart = new uPlot({
      ...size,
      scales: { x: { time: true } },
      series: [{}, { label: 'HIT', stroke: '#17803d' }, { label: 'MISS', stroke: '#b42318' }, { label: 'STALE', stroke: '#b7791f' }, { label: 'other', stroke: '#6b7280' }],
    }, data, box);
    new ResizeObserver(() => chart!.setSize({ width: box.clientWidth, height: 220 })).observe(box);
  } else chart.setData(data);
}

function connect(): void {
  const events = new EventSource('/_edge/ui/stream');
  events.addEventListener('open', () => ($('state').textContent = 'live: one update a second'));
  events.addEventListener('message', (e) => draw(JSON.parse((e as MessageEvent<string>).data) as Snapshot));
  events.addEventListener('error', () => ($('state').textContent = 'reconnecting…'));
}

connect();
