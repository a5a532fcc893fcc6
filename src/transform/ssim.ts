/**
 * Perceptual distance for auto=compress: SSIM on luma (BT.601 Y) over 8×8 windows at stride 4,
 * with the mean and the worst windows kept apart so local damage cannot hide behind a good mean,
 * and a per-pixel chroma distance for the chroma-subsampling decision.
 */

/** 8-bit interleaved pixels, 3 (RGB) or 4 (RGBA) channels. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

export interface SsimScore {
  /** mean SSIM over all windows */
  mean: number;
  /** mean SSIM of the worst 1 % of windows */
  worst: number;
}

const CELL = 4; // the stride; a window is 2×2 cells = 8×8 pixels
const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;
const WORST_SHARE = 0.01;

function checkChannels(img: RawImage): void {
  if (img.channels !== 3 && img.channels !== 4) throw new Error(`expected 3 or 4 channels, got ${img.channels}`);
}

/** Alpha of pixel `i` (1 without an alpha channel). */
const alphaOf = (img: RawImage, i: number) => (img.channels === 4 ? img.data[i * 4 + 3]! / 255 : 1);

/**
 * BT.601 luma (the Y a JPEG stores), alpha over white. The weights sum to 1, so compositing
 * the luma equals the luma of the composited pixel.
 */
export function luma(img: RawImage): Float32Array {
  checkChannels(img);
  const { data, channels } = img;
  const y = new Float32Array(img.width * img.height);
  for (let i = 0, o = 0; i < y.length; i++, o += channels) y[i] = 0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!;
  if (channels === 4) for (let i = 0; i < y.length; i++) y[i] = 255 + (y[i]! - 255) * alphaOf(img, i);
  return y;
}

/**
 * The reference side of SSIM, prepared once (luma, sums, sums of squares) so each candidate of a
 * quality search only adds its own sums and the cross sums.
 */
export class SsimReference {
  private readonly y: Float32Array;
  private readonly width: number;
  /** cells across and down, and their size: 4×4, or one cell of the whole image below 8 px a side */
  private readonly cols: number;
  private readonly rows: number;
  private readonly cellW: number;
  private readonly cellH: number;
  private readonly sum: Float64Array;
  private readonly sq: Float64Array;

  constructor(ref: RawImage) {
    this.y = luma(ref);
    this.width = ref.width;
    const small = ref.width < 2 * CELL || ref.height < 2 * CELL;
    this.cellW = small ? ref.width : CELL;
    this.cellH = small ? ref.height : CELL;
    this.cols = Math.floor(ref.width / this.cellW);
    this.rows = Math.floor(ref.height / this.cellH);
    [this.sum, this.sq] = this.cellSums(this.y);
  }

  /**
   * Sums over cells of b, b² and (with a) a·b: an integral image sampled at the stride, so each
   * 8×8 window is 2×2 cells (4 reads) and the whole costs O(pixels).
   */
  private cellSums(b: Float32Array, a?: Float32Array): [Float64Array, Float64Array, Float64Array] {
    const { cols, rows, cellW, cellH, width } = this;
    const [sb, sbb, sab] = [new Float64Array(cols * rows), new Float64Array(cols * rows), new Float64Array(a ? cols * rows : 0)];
    for (let y = 0; y < rows * cellH; y++) {
      const row = Math.floor(y / cellH) * cols;
      for (let cx = 0; cx < cols; cx++) {
        let s = 0, ss = 0, sx = 0;
        for (let i = y * width + cx * cellW, end = i + cellW; i < end; i++) {
          const v = b[i]!;
          s += v;
          ss += v * v;
          if (a) sx += a[i]! * v;
        }
        sb[row + cx] = sb[row + cx]! + s;
        sbb[row + cx] = sbb[row + cx]! + ss;
        if (a) sab[row + cx] = sab[row + cx]! + sx;
      }
    }
    return [sb, sbb, sab];
  }

  compare(img: RawImage): SsimScore {
    if (img.width !== this.width || img.width * img.height !== this.y.length) throw new Error('SSIM of images of different sizes');
    const { cols, rows, sum: sa, sq: saa } = this;
    const a = this.y;
    const [sb, sbb, sab] = this.cellSums(luma(img), a);
    const span = cols > 1 ? 1 : 0; // a window covers cells (x, y)…(x+span, y+span)
    const n = span ? (2 * CELL) ** 2 : a.length; // one window = 2×2 cells, or the whole image
    const winCols = cols - span;
    const scores = new Float32Array(winCols * (rows - span));
    const win = (s: Float64Array, k: number) => (span ? s[k]! + s[k + 1]! + s[k + cols]! + s[k + cols + 1]! : s[k]!);
    let total = 0;
    for (let wy = 0, w = 0; wy < rows - span; wy++) {
      for (let wx = 0; wx < winCols; wx++, w++) {
        const k = wy * cols + wx;
        const ma = win(sa, k) / n;
        const mb = win(sb, k) / n;
        const va = win(saa, k) / n - ma * ma;
        const vb = win(sbb, k) / n - mb * mb;
        const cov = win(sab, k) / n - ma * mb;
        const s = ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
        scores[w] = s;
        total += s;
      }
    }
    const worstCount = Math.max(1, Math.ceil(scores.length * WORST_SHARE));
    return { mean: total / scores.length, worst: meanOfLowest(scores, worstCount) };
  }
}

/**
 * Mean of the lowest `count` values in O(n) (sorting 100 000 windows cost as much as the rest of
 * SSIM): a histogram finds the bin where the lowest `count` end; that bin counts at its mean.
 * Exact but for that bin, whose values lie within 1/2048 of each other.
 */
function meanOfLowest(values: Float32Array, count: number): number {
  const bins = 4096; // over SSIM's range -1…1
  const bin = (v: number) => Math.min(bins - 1, Math.max(0, Math.floor(((v + 1) / 2) * bins)));
  const histogram = new Uint32Array(bins);
  for (const v of values) histogram[bin(v)]!++;
  let cut = 0;
  let below = 0;
  while (below + histogram[cut]! < count) below += histogram[cut++]!;
  let sum = 0;
  let edgeSum = 0;
  for (const v of values) {
    const b = bin(v);
    if (b < cut) sum += v;
    else if (b === cut) edgeSum += v;
  }
  return (sum + (edgeSum / histogram[cut]!) * (count - below)) / count;
}

/** SSIM of `b` against the reference `a` on luma; `worst` is the mean of the worst 1 % of windows. */
export function ssimLuma(a: RawImage, b: RawImage): SsimScore {
  return new SsimReference(a).compare(b);
}

export interface ChromaPlanes {
  cb: Float32Array;
  cr: Float32Array;
}

/** BT.601 full-range Cb and Cr (as JFIF stores them, 128 = grey), alpha over white (white is grey: 128). */
export function chromaPlanes(img: RawImage): ChromaPlanes {
  checkChannels(img);
  const { data, channels } = img;
  const n = img.width * img.height;
  const cb = new Float32Array(n);
  const cr = new Float32Array(n);
  for (let i = 0, o = 0; i < n; i++, o += channels) {
    const r = data[o]!, g = data[o + 1]!, b = data[o + 2]!;
    const a = alphaOf(img, i);
    cb[i] = 128 + a * (-0.168736 * r - 0.331264 * g + 0.5 * b);
    cr[i] = 128 + a * (0.5 * r - 0.418688 * g - 0.081312 * b);
  }
  return { cb, cr };
}

/** Per pixel, how far apart two images' chroma is: Euclidean in Cb/Cr, 0–255 units. */
export function chromaDistance(a: ChromaPlanes, b: ChromaPlanes): Float32Array {
  const d = new Float32Array(a.cb.length);
  for (let i = 0; i < d.length; i++) {
    const dCb = a.cb[i]! - b.cb[i]!;
    const dCr = a.cr[i]! - b.cr[i]!;
    d[i] = Math.sqrt(dCb * dCb + dCr * dCr); // not Math.hypot: several times slower in V8
  }
  return d;
}
