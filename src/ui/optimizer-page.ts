/**
 * The web optimizer's page script (served as /ui/optimizer.js, no inline script anywhere): files
 * dropped or picked, or a URL, each sent to POST /web/optimize with the settings, a progress bar
 * while it uploads and is optimized, the saving, a before/after slider, a download link, and
 * every result at once as one ZIP.
 */
interface WebResult {
  success: boolean;
  message?: string;
  file_name: string;
  original_size: number;
  kraked_size: number;
  saved_bytes: number;
  kraked_url: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const done: WebResult[] = [];

function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The form's settings as Kraken options (the same the API takes). */
function options(): Record<string, unknown> {
  const form = $<HTMLFormElement>('settings');
  const data = new FormData(form);
  const o: Record<string, unknown> = { lossy: data.get('mode') === 'lossy' };
  const quality = Number(data.get('quality'));
  if (quality >= 1 && quality <= 100) o.quality = quality;
  const width = Number(data.get('width'));
  const height = Number(data.get('height'));
  const strategy = String(data.get('strategy'));
  if (width > 0 || height > 0) {
    const chosen = width > 0 && height > 0 ? strategy : width > 0 ? 'landscape' : 'portrait';
    o.resize = { strategy: chosen, ...(width > 0 ? { width } : {}), ...(height > 0 ? { height } : {}) };
  }
  const format = String(data.get('format') ?? '');
  if (format) o.convert = { format };
  if (data.get('keepMeta')) o.preserve_meta = ['profile', 'copyright'];
  return o;
}

function total(): void {
  const before = done.reduce((n, r) => n + r.original_size, 0);
  const after = done.reduce((n, r) => n + r.kraked_size, 0);
  $('total').textContent = done.length === 0 ? '' : `${done.length} optimized: ${kib(before)} → ${kib(after)}, saved ${kib(before - after)} (${((1 - after / before) * 100).toFixed(1)} %)`;
  $<HTMLButtonElement>('zip').disabled = done.length === 0;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
}

/** Before (the caller's own bytes) over after, split by a slider. */
function compare(before: string, after: string, name: string): HTMLElement {
  const box = element('div', { className: 'compare' });
  const a = element('img', { src: before, alt: `${name}, original` });
  const b = element('img', { src: after, alt: `${name}, optimized`, className: 'after' });
  const slider = element('input', { type: 'range', min: '0', max: '100', value: '50' });
  slider.setAttribute('aria-label', `Compare ${name}: original on the left, optimized on the right`);
  slider.addEventListener('input', () => box.style.setProperty('--split', `${slider.value}%`));
  box.append(a, b);
  const wrap = element('div', {}, box, slider);
  return wrap;
}

function send(body: FormData, name: string, before: string | undefined): void {
  const progress = element('progress', { max: 1, value: 0 });
  progress.setAttribute('aria-label', `${name}: progress`);
  const status = element('span', { className: 'tag' }, 'uploading…');
  const item = element('li', {}, element('div', { className: 'row' }, element('span', { className: 'name' }, name), status), progress);
  $('results').prepend(item);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/web/optimize');
  xhr.setRequestHeader('X-Imgedge-Web', '1');
  xhr.responseType = 'json';
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) progress.value = (e.loaded / e.total) * 0.5;
  });
  xhr.upload.addEventListener('load', () => {
    progress.value = 0.5;
    status.textContent = 'optimizing…';
  });
  xhr.addEventListener('load', () => {
    progress.value = 1;
    const r = xhr.response as WebResult | null;
    if (!r || !r.success) {
      status.textContent = '';
      item.append(element('p', { className: 'error', role: 'alert' } as Partial<HTMLParagraphElement>, `${name}: ${r?.message ?? `failed (${xhr.status})`}`));
      return;
    }
    done.push(r);
    const saved = r.original_size > 0 ? (r.saved_bytes / r.original_size) * 100 : 0;
    status.textContent = '';
    const link = element('a', { href: r.kraked_url, download: r.file_name }, `Download ${r.file_name}`);
    item.querySelector('.row')!.append(
      element('span', {}, `${kib(r.original_size)} → ${kib(r.kraked_size)}`),
      element('span', { className: 'saving' }, `−${saved.toFixed(1)} %`),
      link,
    );
    item.append(compare(before ?? r.kraked_url, r.kraked_url, r.file_name));
    total();
  });
  xhr.addEventListener('error', () => {
    status.textContent = '';
    item.append(element('p', { className: 'error', role: 'alert' } as Partial<HTMLParagraphElement>, `${name}: the upload failed`));
  });
  xhr.send(body);
}

function addFiles(files: Iterable<File>): void {
  for (const file of files) {
    const body = new FormData();
    body.append('data', JSON.stringify(options()));
    body.append('file', file, file.name);
    send(body, file.name, URL.createObjectURL(file));
  }
}

async function downloadAll(): Promise<void> {
  const res = await fetch('/web/zip', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'X-Imgedge-Web': '1' },
    body: JSON.stringify({ files: done.map((r) => new URL(r.kraked_url, location.href).pathname) }),
  });
  if (!res.ok) return void ($('total').textContent = `The ZIP could not be made (${res.status})`);
  const a = element('a', { href: URL.createObjectURL(await res.blob()), download: 'optimized.zip' });
  document.body.append(a);
  a.click();
  a.remove();
}

function start(): void {
  const input = $<HTMLInputElement>('files');
  input.addEventListener('change', () => {
    if (input.files) addFiles(input.files);
    input.value = '';
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer?.files) addFiles(e.dataTransfer.files);
  });
  $<HTMLFormElement>('by-url').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $<HTMLInputElement>('url').value.trim();
    if (!url) return;
    const body = new FormData();
    body.append('data', JSON.stringify({ ...options(), url }));
    send(body, url.split('/').pop() || url, undefined);
  });
  $('zip').addEventListener('click', () => void downloadAll());
}

start();
