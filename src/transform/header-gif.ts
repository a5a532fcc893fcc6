/**
 * GIF: logical screen, then extensions and image descriptors, skipping LZW data by its sub-blocks.
 * Sizes follow libnsgif (what sharp decodes with): the first frame may grow the screen, and
 * screens of a few "desktop" sizes, 0 or over 2048 are taken as 1×1 before that growth.
 */
import { ascii, malformed, u16, u8 } from './header-fields.js';
import type { HeaderInfo } from './header-fields.js';

const DESKTOP_SIZES = new Set(['640x480', '640x512', '800x600', '1024x768', '1280x1024', '1600x1200']);
const EXTENSION = 0x21;
const IMAGE = 0x2c;
const TRAILER = 0x3b;

/** Colour table bytes announced by a packed field (flag in bit 7, size in bits 0-2). */
const colourTable = (packed: number) => (packed & 0x80 ? 3 << ((packed & 7) + 1) : 0);

/** Position after a run of data sub-blocks (each: size byte, data; a 0 size ends the run). */
function skipSubBlocks(b: Buffer, pos: number): number {
  for (let size = u8(b, pos); size !== 0; size = u8(b, pos)) pos += 1 + size;
  return pos + 1;
}

export function readGif(b: Buffer, h: HeaderInfo): void {
  let width = u16(b, 6, true);
  let height = u16(b, 8, true);
  if (DESKTOP_SIZES.has(`${width}x${height}`) || width === 0 || height === 0 || width > 2048 || height > 2048) {
    width = height = 1;
  }
  let frames = 0;
  let pos = 13 + colourTable(u8(b, 10));
  for (;;) {
    const block = u8(b, pos);
    if (block === TRAILER) {
      if (frames === 0) throw malformed('gif', 'no image');
      Object.assign(h, { frames, framesComplete: true, complete: true });
      return;
    }
    if (block === EXTENSION) {
      pos = readExtension(b, pos + 1, h);
    } else if (block === IMAGE) {
      const flags = u8(b, pos + 9);
      if (frames === 0) {
        h.width = Math.max(width, u16(b, pos + 1, true) + u16(b, pos + 5, true));
        h.height = Math.max(height, u16(b, pos + 3, true) + u16(b, pos + 7, true));
      }
      frames++;
      pos += 10 + colourTable(flags);
      if (u8(b, pos) >= 12) throw malformed('gif', 'LZW code size'); // LZW codes stop at 12 bits
      pos = skipSubBlocks(b, pos + 1);
      h.frames = frames;
      if (frames > 1) h.animated = true;
      // once animation is known, only the frame count can change: framesComplete says whether it has
      if (h.animated) h.complete = true;
    } else {
      throw malformed('gif', `block 0x${block.toString(16)} at byte ${pos}`);
    }
  }
}

/** An extension block (label at `pos`): GCE transparency, NETSCAPE/ANIMEXTS looping. */
function readExtension(b: Buffer, pos: number, h: HeaderInfo): number {
  const label = u8(b, pos);
  const first = pos + 1; // size byte of the first sub-block
  if (label === 0xf9 && u8(b, first) >= 4 && (u8(b, first + 1) & 1) === 1) h.hasAlpha = true;
  if (label === 0xff && u8(b, first) === 11) {
    const app = ascii(b, first + 1, 11);
    if (app === 'NETSCAPE2.0' || app === 'ANIMEXTS1.0') h.animated = true;
  }
  return skipSubBlocks(b, first);
}
