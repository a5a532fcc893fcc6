/**
 * The URL playground's page script (/_edge/ui/playground.js): imgix parameters from the form, the
 * edge's answer (via /_edge/ui/preview/<site>/<path>) beside the original with its headers, the
 * URL as the site's clients send it (signed by the edge where the site signs), and ready-to-copy
 * <img srcset sizes> and <picture> markup.
 */
interface SiteInfo {
  name: string;
  base: string;
  signed: boolean;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let sites: SiteInfo[] = [];
let focal: { x: number; y: number } | undefined;
let serial = 0;

/** The form as an imgix query (only what differs from the defaults). */
function query(extra: Record<string, string> = {}): URLSearchParams {
  const data = new FormData($<HTMLFormElement>('controls'));
  const q = new URLSearchParams();
  for (const name of ['w', 'h', 'fit', 'fm', 'q', 'flip']) {
    const v = String(data.get(name) ?? '').trim();
    if (v) q.set(name, v);
  }
  const crop = String(data.get('crop') ?? '');
  if (crop) q.set('crop', crop);
  if (crop === 'focalpoint' && focal) {
    q.set('fp-x', focal.x.toFixed(3));
    q.set('fp-y', focal.y.toFixed(3));
  }
  for (const name of ['blur', 'sharp', 'rot']) {
    const v = Number(data.get(name));
    if (v > 0) q.set(name, String(v));
  }
  const auto = ['format', 'compress'].filter((a) => data.get(`auto-${a}`));
  if (auto.length) q.set('auto', auto.join(','));
  if (data.get('trim')) q.set('trim', 'auto');
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}

const site = () => sites.find((s) => s.name === $<HTMLSelectElement>('site').value) ?? sites[0]!;
const path = () => `/${$<HTMLInputElement>('path').value.trim().replace(/^\/+/, '')}`;
const target = (q: URLSearchParams) => `${path()}${q.size ? `?${q}` : ''}`;

async function signedUrls(targets: string[]): Promise<string[]> {
  const s = site();
  if (!s.signed) return targets.map((t) => s.base + t);
  const p = new URLSearchParams({ site: s.name });
  for (const t of targets) p.append('url', t);
  const { urls } = (await (await fetch(`/_edge/ui/sign?${p}`)).json()) as { urls: string[] };
  return urls.map((u) => s.base + u);
}

function headerRows(res: Response, bytes: number): void {
  const shown: [string, string][] = [['status', String(res.status)], ['bytes', String(bytes)]];
  for (const name of ['content-type', 'x-cache', 'x-quality', 'server-timing']) {
    const v = res.headers.get(name);
    if (v) shown.push([name, v]);
  }
  $('headers').replaceChildren(...shown.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
}

async function update(): Promise<void> {
  if (path() === '/') return; // nothing picked yet
  const mine = ++serial;
  const q = query();
  const s = site();
  $<HTMLImageElement>('original').src = `/_edge/ui/preview/${encodeURIComponent(s.name)}${path()}?fm=${'png'}&w=${Math.min(800, Number(q.get('w')) || 800)}`;
  const res = await fetch(`/_edge/ui/preview/${encodeURIComponent(s.name)}${target(q)}`, { headers: { accept: 'image/avif,image/webp,*/*' } });
  const blob = await res.blob();
  if (mine !== serial) return; // a newer change is on its way
  headerRows(res, blob.size);
  const result = $<HTMLImageElement>('result');
  if (result.src.startsWith('blob:')) URL.revokeObjectURL(result.src);
  result.src = res.ok ? URL.createObjectURL(blob) : '';
  const widths = [320, 640, 960, 1280];
  const base = new URLSearchParams(q);
  base.delete('w');
  const [main, ...set] = await signedUrls([target(q), ...widths.map((w) => target(new URLSearchParams({ ...Object.fromEntries(base), w: String(w) })))]);
  const formats = await signedUrls(['avif', 'webp'].map((fm) => target(new URLSearchParams({ ...Object.fromEntries(q), fm }))));
  if (mine !== serial) return;
  $('url').textContent = main!;
  $<HTMLTextAreaElement>('srcset').value = `<img src="${main}"\n     srcset="${set.map((u, i) => `${u} ${widths[i]}w`).join(',\n             ')}"\n     sizes="(max-width: 640px) 100vw, 640px" alt="">`;
  $<HTMLTextAreaElement>('picture').value = `<picture>\n  <source type="image/avif" srcset="${formats[0]}">\n  <source type="image/webp" srcset="${formats[1]}">\n  <img src="${main}" alt="">\n</picture>`;
}

async function start(): Promise<void> {
  sites = (await (await fetch('/_edge/ui/sites')).json()) as SiteInfo[];
  $('site').replaceChildren(...sites.map((s) => Object.assign(document.createElement('option'), { value: s.name, textContent: s.name })));
  const form = $<HTMLFormElement>('controls');
  // The path is taken when it is complete (change: Enter or leaving the field), not letter by letter.
  form.addEventListener('input', (e) => e.target !== $('path') && void update());
  form.addEventListener('change', (e) => e.target === $('path') && void update());
  form.addEventListener('submit', (e) => e.preventDefault());
  $<HTMLImageElement>('original').addEventListener('click', (e) => {
    const img = e.currentTarget as HTMLImageElement;
    const box = img.getBoundingClientRect();
    focal = { x: (e.clientX - box.left) / box.width, y: (e.clientY - box.top) / box.height };
    $('fp').textContent = `(focal point ${focal.x.toFixed(2)}, ${focal.y.toFixed(2)})`;
    $<HTMLSelectElement>('crop').value = 'focalpoint';
    if (!$<HTMLSelectElement>('fit').value) $<HTMLSelectElement>('fit').value = 'crop';
    void update();
  });
  await update();
}

void start();
