/** JPEG: walk the marker segments up to the first scan (SOS); pixels are never touched. */
import { malformed, startsWith, u16, u8 } from './header-fields.js';
import { readExifBlock } from './exif.js';
import type { HeaderInfo } from './header-fields.js';

const SOS = 0xda;
const PROGRESSIVE_SOF = new Set([0xc2, 0xc6, 0xca, 0xce]);

/** SOF0..SOF15 carry the frame header; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
/** TEM and RSTn stand alone: no length follows. */
const isStandalone = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd7);

export function readJpeg(b: Buffer, h: HeaderInfo): void {
  let pos = 2;
  let sawFrame = false;
  for (;;) {
    if (u8(b, pos) !== 0xff) throw malformed('jpeg', `no marker at byte ${pos}`);
    while (u8(b, pos) === 0xff) pos++; // fill bytes may precede any marker
    const marker = u8(b, pos++);
    if (isStandalone(marker)) continue;
    if (marker === 0x00 || marker === 0xd8 || marker === 0xd9) {
      throw malformed('jpeg', `marker 0x${marker.toString(16)} before the first scan`);
    }
    const length = u16(b, pos, false);
    if (length < 2) throw malformed('jpeg', `segment length ${length}`);
    const start = pos + 2;
    const end = pos + length;
    if (marker === SOS) {
      if (!sawFrame) throw malformed('jpeg', 'scan before the frame header');
      h.complete = true;
      return;
    }
    if (isSof(marker)) {
      if (sawFrame) throw malformed('jpeg', 'two frame headers');
      readFrameHeader(b, start, length, marker, h);
      sawFrame = true;
    } else if (marker === 0xe1 && !h.hasExif && startsWith(b, start, end, 'Exif\0')) {
      readExifBlock(b, start + 6, end, h);
    } else if (marker === 0xe2 && startsWith(b, start, end, 'ICC_PROFILE\0')) {
      h.hasIcc = true;
    }
    pos = end;
  }
}

/** SOFn: precision, height, width, component count, then 3 bytes per component. */
function readFrameHeader(b: Buffer, start: number, length: number, marker: number, h: HeaderInfo): void {
  const height = u16(b, start + 1, false);
  const width = u16(b, start + 3, false);
  const components = u8(b, start + 5);
  if (components === 0 || length !== 8 + 3 * components) throw malformed('jpeg', 'frame header length');
  // height 0 means "defined later by DNL", which libjpeg does not support
  if (width === 0 || height === 0) throw malformed('jpeg', `size ${width}x${height}`);
  h.width = width;
  h.height = height;
  h.channels = components;
  h.space = components === 1 ? 'b-w' : components === 4 ? 'cmyk' : 'srgb';
  h.progressive = PROGRESSIVE_SOF.has(marker);
}
