/**
 * Drawn graphics the quality benchmark keeps beside the real photographs: the cases photographs
 * do not cover (text, a product on white, a screenshot). Drawn by the project from SVG, no grain.
 */
import sharp from 'sharp';
import type { RawImage } from '../src/transform/types.js';

export interface Graphic {
  name: string;
  description: string;
  svg: string;
}

const doc = (w: number, h: number, body: string) => `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${body}</svg>`;

export const GRAPHICS: Graphic[] = [
  {
    name: 'product',
    description: 'dark shoe on white (drawn)',
    svg: doc(1200, 1200, `<defs><linearGradient id="b" x2="0" y2="1"><stop offset="0" stop-color="#3a3a44"/><stop offset="1" stop-color="#0b0b10"/></linearGradient>
    <filter id="sh"><feGaussianBlur stdDeviation="18"/></filter></defs>
    <rect width="1200" height="1200" fill="#fff"/>
    <ellipse cx="600" cy="880" rx="430" ry="40" fill="#000" opacity="0.25" filter="url(#sh)"/>
    <path d="M180 820 Q170 640 300 600 L560 470 Q640 430 700 520 Q780 640 980 700 Q1060 730 1040 840 Z" fill="url(#b)"/>
    <path d="M180 820 L1040 840 L1030 880 L190 870 Z" fill="#f4f4f4" stroke="#111" stroke-width="6"/>`),
  },
  {
    name: 'card',
    description: 'saturated text on white (drawn)',
    svg: doc(1200, 630, `<rect width="1200" height="630" fill="#fff"/>
    <text x="60" y="150" font-family="sans-serif" font-weight="bold" font-size="84" fill="#e00000">SALE -40 %</text>
    <text x="60" y="260" font-family="sans-serif" font-size="40" fill="#0040d0">on every red and blue item</text>
    <text x="60" y="340" font-family="sans-serif" font-size="24" fill="#d00060">Offer valid until Sunday, while stocks last. Terms apply.</text>
    <rect x="60" y="420" width="340" height="90" rx="12" fill="#e00000"/><text x="230" y="478" font-family="sans-serif" font-size="34" fill="#fff" text-anchor="middle">Shop now</text>`),
  },
  {
    name: 'screenshot',
    description: 'app UI with text (drawn)',
    svg: doc(1280, 800, `<rect width="1280" height="800" fill="#f7f8fa"/>
    <rect width="1280" height="56" fill="#24292f"/><text x="24" y="36" font-family="sans-serif" font-size="20" fill="#fff">imgedge dashboard</text>
    <rect x="24" y="80" width="260" height="696" fill="#fff" stroke="#d0d7de"/>
    ${Array.from({ length: 12 }, (_, i) => `<text x="44" y="${116 + 40 * i}" font-family="sans-serif" font-size="15" fill="#1f2328">Menu entry ${i + 1}</text>`).join('')}
    ${Array.from({ length: 22 }, (_, i) => `<text x="320" y="${110 + 28 * i}" font-family="sans-serif" font-size="${i % 7 === 0 ? 22 : 14}" fill="${i % 7 === 0 ? '#0969da' : '#1f2328'}">${i % 7 === 0 ? 'Section heading' : 'The quick brown fox jumps over the lazy dog; cache hit ratio 97.3 % at 1 240 req/s.'}</text>`).join('')}`),
  },
];

/** The graphic's pixels, 8-bit RGB, its long side at most `maxSide`. */
export async function renderGraphic(g: Graphic, maxSide: number): Promise<RawImage> {
  const { data, info } = await sharp(Buffer.from(g.svg)).flatten({ background: '#ffffff' })
    .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 3 };
}
