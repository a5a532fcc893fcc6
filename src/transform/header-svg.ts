/**
 * SVG: the root `<svg …>` tag's width, height and viewBox, sized the way libvips asks librsvg
 * (72 dpi, rounded to whole pixels). When neither gives a size, librsvg measures the drawing,
 * which needs the whole document: the size is then left unknown.
 */
import { OutOfBytes, malformed } from './header-fields.js';
import type { HeaderInfo } from './header-fields.js';

// Every regex here runs on up to 64 KiB of untrusted text: no two adjacent parts may match the
// same characters, or a failing match backtracks quadratically.
/** The prolog identify.ts skips (whitespace, XML declaration, comments, DOCTYPE), in linear form. */
const PROLOG = /^(?:\s+|<\?xml[\s\S]*?\?>|<!--[\s\S]*?-->|<!doctype\s+svg[^[>]*(?:\[[\s\S]*?\]\s*)?>)/i;
const ROOT_TAG = /^<svg(?:[^>"']|"[^"]*"|'[^']*')*>/;
/** The lookbehind makes a name start only at a boundary, so a long run of name characters is tried once. */
const ATTRIBUTE = /(?<![^\s=/>])([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
const LENGTH = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)(px|in|cm|mm|pt|pc|em|ex|%)?$/i;
/** Pixels per unit at 72 dpi; em and ex use librsvg's default 12px font. */
const PIXELS_PER: Record<string, number> = { px: 1, in: 72, cm: 72 / 2.54, mm: 72 / 25.4, pt: 1, pc: 12, em: 12, ex: 6 };

/** An absolute length in pixels; undefined for percentages, negative or unreadable values. */
function length(raw: string | undefined): number | undefined {
  const m = raw === undefined ? null : LENGTH.exec(raw.trim());
  const unit = (m?.[2] ?? 'px').toLowerCase();
  const v = Number(m?.[1]) * (PIXELS_PER[unit] ?? NaN);
  return Number.isFinite(v) && v >= 0 ? v : undefined;
}

function viewBox(raw: string | undefined): { w: number; h: number } | undefined {
  const n = raw?.trim().split(/[\s,]+/).map(Number);
  return n?.length === 4 && n.every(Number.isFinite) && n[2]! > 0 && n[3]! > 0 ? { w: n[2]!, h: n[3]! } : undefined;
}

export function readSvg(b: Buffer, h: HeaderInfo): void {
  let s = b.toString('utf8').replace(/^\uFEFF/, '');
  for (let m = PROLOG.exec(s); m; m = PROLOG.exec(s)) s = s.slice(m[0].length);
  const tag = ROOT_TAG.exec(s)?.[0];
  if (tag === undefined) throw new OutOfBytes(); // sniffFormat saw `<svg`: the tag is not closed yet
  const attrs = new Map<string, string>();
  for (const m of tag.matchAll(ATTRIBUTE)) if (!attrs.has(m[1]!)) attrs.set(m[1]!, m[2] ?? m[3] ?? '');
  h.hasAlpha = true; // rendered to RGBA
  h.channels = 4;
  h.complete = true;

  const w = length(attrs.get('width'));
  const ht = length(attrs.get('height'));
  const box = viewBox(attrs.get('viewBox'));
  let size: [number, number] | undefined;
  if (w !== undefined && ht !== undefined) size = [w, ht];
  else if (w && box) size = [w, (w * box.h) / box.w];
  else if (ht && box) size = [(ht * box.w) / box.h, ht];
  else if (box) size = [box.w, box.h];
  if (!size) return;
  if (size[0] < 0.5 || size[1] < 0.5) throw malformed('svg', `size ${size[0]}x${size[1]}`);
  h.width = Math.floor(size[0] + 0.5);
  h.height = Math.floor(size[1] + 0.5);
}
