/**
 * SSIMULACRA 2.1 (Jon Sneyers, Cloudinary, 2022, updated April 2023): the perceptual metric the
 * quality search steers by. A faithful port of libjxl's tools/ssimulacra2.cc and
 * tools/gauss_blur.cc (the reference implementation, BSD licence; also github.com/cloudinary/ssimulacra2):
 *
 * - both images to linear sRGB (alpha blended over grey 0.5 in sRGB first, as the reference does);
 * - 6 scales (1:1 … 1:32), downsampled by 2×2 box averages in linear RGB;
 * - per scale: XYB (libjxl's opsin absorbance + cube root), rescaled to ~0..1 (X·14+0.42, Y+0.01,
 *   B−Y+0.55); Gaussian blur σ = 1.5 (Charalampidis' recursive truncated-cosine filter, zero padded);
 *   three error maps per channel: SSIM without the luminance gamma term, "ringing" (edges in the
 *   distorted image where the original is smooth) and "blurring" (the reverse);
 * - each map pooled by its 1-norm and 4-norm: 108 numbers, weighted, then the reference's
 *   polynomial and power mapping to a score (100 = identical, 90 ≈ visually lossless at 1:1,
 *   70 ≈ high, 50 ≈ medium, 30 ≈ low quality).
 *
 * The per-pixel loops (blur, XYB, maps, downsampling) are C compiled to WebAssembly with 128-bit
 * SIMD (native/ssimulacra2.c, `npm run build:wasm`); in plain JavaScript they cost ~2.5× more
 * (135 ms against 55 ms per comparison at 800×500) and the quality search is mostly this metric. Like the reference they work on float planes with
 * float filter state, so scores agree with the reference binary to a few hundredths
 * (test/transform/ssimulacra2.test.ts), inside the ~0.2 by which the reference itself moves
 * between SIMD levels.
 *
 * The original's side (its pyramid, blurred means and variances) is prepared once per reference,
 * so comparing a candidate costs 3 blurred maps per channel and scale instead of 5; maps whose
 * weights are all zero (X and B's SSIM at full size, Y at 1:32) are skipped, which leaves the score
 * unchanged. Each live reference has its own WebAssembly instance and memory; `dispose()` hands
 * them to the next reference on the thread (faulting in fresh memory costs more than a comparison).
 */
import { readFileSync } from 'node:fs';
import type { RawImage } from './types.js';

const NUM_SCALES = 6;

/** sRGB 8-bit → linear, the exact sRGB transfer function. */
const LINEAR = new Float32Array(256);
for (let i = 0; i < 256; i++) LINEAR[i] = srgbToLinear(i / 255);
function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

/** Recursive Gaussian coefficients for σ (tools/gauss_blur.cc, CreateRecursiveGaussian). */
function recursiveGaussian(sigma: number) {
  const radius = Math.round(3.2795 * sigma + 0.2546);
  const piDiv2r = Math.PI / (2 * radius);
  const omega = [piDiv2r, 3 * piDiv2r, 5 * piDiv2r];
  const p1 = 1 / Math.tan(0.5 * omega[0]!);
  const p3 = -1 / Math.tan(0.5 * omega[1]!);
  const p5 = 1 / Math.tan(0.5 * omega[2]!);
  const r1 = (p1 * p1) / Math.sin(omega[0]!);
  const r3 = (-p3 * p3) / Math.sin(omega[1]!);
  const r5 = (p5 * p5) / Math.sin(omega[2]!);
  const rho = omega.map((w) => Math.exp(-0.5 * sigma * sigma * w * w) / radius);
  const d13 = p1 * r3 - r1 * p3;
  const d35 = p3 * r5 - r3 * p5;
  const d51 = p5 * r1 - r5 * p1;
  const zeta15 = d35 / d13;
  const zeta35 = d51 / d13;
  const beta = solve3([[p1, p3, p5], [r1, r3, r5], [zeta15, zeta35, 1]], [1, radius * radius - sigma * sigma, zeta15 * rho[0]! + zeta35 * rho[1]! + rho[2]!]);
  // The reference stores these as float.
  const n2 = beta.map((b, i) => Math.fround(-b * Math.cos(omega[i]! * (radius + 1))));
  const d1 = omega.map((w) => Math.fround(-2 * Math.cos(w)));
  return { radius, n2, d1 };
}

/** A·x = b for a 3×3 A, by the inverse (as the reference: Inv3x3Matrix then multiply). */
function solve3(a: number[][], b: number[]): number[] {
  const [[a0, a1, a2], [a3, a4, a5], [a6, a7, a8]] = a as [[number, number, number], [number, number, number], [number, number, number]];
  const c0 = a4 * a8 - a5 * a7;
  const c1 = a5 * a6 - a3 * a8;
  const c2 = a3 * a7 - a4 * a6;
  const det = a0 * c0 + a1 * c1 + a2 * c2;
  const inv = [
    c0, a2 * a7 - a1 * a8, a1 * a5 - a2 * a4,
    c1, a0 * a8 - a2 * a6, a2 * a3 - a0 * a5,
    c2, a1 * a6 - a0 * a7, a0 * a4 - a1 * a3,
  ].map((v) => v / det);
  return [0, 1, 2].map((r) => inv[3 * r]! * b[0]! + inv[3 * r + 1]! * b[1]! + inv[3 * r + 2]! * b[2]!);
}

const RG = recursiveGaussian(1.5);

interface Kernels {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  set_gaussian(n21: number, n23: number, n25: number, d11: number, d13: number, d15: number, radius: number): void;
  blur(input: number, out: number, temp: number, w: number, h: number, state: number, zeros: number, scratch: number): void;
  product(a: number, b: number, out: number, n: number): void;
  downsample(input: number, out: number, w: number, h: number): void;
  to_xyb(r: number, g: number, b: number, x: number, y: number, bl: number, n: number): void;
  error_maps(img1: number, mu1: number, s11: number, img2: number, mu2: number, s22: number, s12: number, n: number, out: number): void;
}

/** One arena kept between references (per thread): enough for a 640 000-pixel view. */
const MAX_SPARE_BYTES = 128 * 1024 * 1024;
/** Arenas grow in steps, so a slightly larger image can still reuse the spare one. */
const ARENA_STEP = 16 * 1024 * 1024;
let spare: Arena | undefined;

const WASM = new WebAssembly.Module(readFileSync(new URL('../../../native/ssimulacra2.wasm', import.meta.url)));

/** One WebAssembly instance and a bump allocator over its memory, sized once (views stay valid). */
class Arena {
  readonly k: Kernels;
  private readonly base: number;
  private next: number;
  private end: number;

  constructor(readonly capacity: number) {
    this.k = new WebAssembly.Instance(WASM, {}).exports as unknown as Kernels;
    this.base = this.next = Number(this.k.__heap_base.value);
    this.end = this.base + capacity;
    const pages = Math.ceil((this.end - this.k.memory.buffer.byteLength) / 65536);
    if (pages > 0) this.k.memory.grow(pages);
    const [n21, n23, n25] = RG.n2 as [number, number, number];
    const [d11, d13, d15] = RG.d1 as [number, number, number];
    this.k.set_gaussian(n21, n23, n25, d11, d13, d15, RG.radius);
  }

  /**
   * An arena of at least `bytes`: the one a disposed reference gave back when it is large enough
   * (a fresh instance's memory costs more to fault in than the metric's first pass), else a new one.
   */
  static take(bytes: number): Arena {
    const reused = spare && spare.capacity >= bytes ? spare : undefined;
    spare = undefined;
    if (!reused) return new Arena(Math.ceil(bytes / ARENA_STEP) * ARENA_STEP);
    reused.next = reused.base;
    return reused;
  }

  /** Keeps this arena for the next reference, unless it is too large to hold on to. */
  give(): void {
    if (this.capacity <= MAX_SPARE_BYTES && (!spare || spare.capacity < this.capacity)) spare = this;
  }

  /** A plane of `floats` floats, 16-byte aligned for SIMD; returns its address. */
  alloc(floats: number): number {
    const at = this.next;
    this.next += Math.ceil((floats * 4) / 16) * 16;
    if (this.next > this.end) throw new Error('ssimulacra2: arena overflow');
    return at;
  }

  f32(at: number, floats: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, at, floats);
  }

  f64(at: number, count: number): Float64Array {
    return new Float64Array(this.k.memory.buffer, at, count);
  }
}

/** Sizes of the scales the reference computes: it checks the previous scale's size, so the last may be under 8 px. */
function scaleSizes(width: number, height: number): { width: number; height: number }[] {
  const sizes = [];
  let w = width;
  let h = height;
  for (let s = 0; s < NUM_SCALES && w >= 8 && h >= 8; s++) {
    if (s > 0) [w, h] = [(w + 1) >> 1, (h + 1) >> 1];
    sizes.push({ width: w, height: h });
  }
  return sizes;
}

/** Linear RGB planes of an 8-bit sRGB image, alpha blended over `background` (sRGB 0..1). */
function toLinear(img: RawImage, background: number, [r, g, b]: Float32Array[]): void {
  const { width, height, channels, data } = img;
  const size = width * height;
  const grey = channels < 3; // 1 (grey) or 2 (grey + alpha) channels
  const alpha = channels === 2 || channels === 4;
  const [ig, ib] = grey ? [0, 0] : [1, 2];
  for (let i = 0, o = 0; i < size; i++, o += channels) {
    if (alpha) {
      const a = data[o + channels - 1]! / 255;
      r![i] = srgbToLinear(a * (data[o]! / 255) + (1 - a) * background);
      g![i] = srgbToLinear(a * (data[o + ig]! / 255) + (1 - a) * background);
      b![i] = srgbToLinear(a * (data[o + ib]! / 255) + (1 - a) * background);
    } else {
      r![i] = LINEAR[data[o]!]!;
      g![i] = LINEAR[data[o + ig]!]!;
      b![i] = LINEAR[data[o + ib]!]!;
    }
  }
}

interface Scale {
  width: number;
  height: number;
  /** linear RGB planes (the candidate's, reused by every comparison; the original's while preparing) */
  linear: number[];
  /** the original's XYB, blurred XYB and blurred square (0 where the SSIM map carries no weight) */
  xyb: number[];
  mu: number[];
  sigmaSq: number[];
}

// prettier-ignore
const WEIGHTS = [
  0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0, 0.0004371155730107379, 0.0,
  1.1041726426657346, 0.00066284834129271, 0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0,
  1.8422455520539298, 11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
  1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833, 0.0,
  0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0,
  0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
  0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
  225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
  176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0,
  0.0, 34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
  0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112,
  0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437,
  0.0, 0.0, 8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
  0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
  0.0005130064588990679, 0.0, 0.00010854057858411537,
];

/**
 * Whether the SSIM map of channel `c` at `scale` carries any weight when the image has `scales`
 * scales (the weights are taken in order, so fewer scales shift them). Where both of its weights
 * are zero (X and B at full size, Y at 1:32) its two blurs are skipped: the score is unchanged.
 */
const ssimWeighted = (scales: number, scale: number, c: number) => {
  const i = c * scales * 6 + scale * 6;
  return WEIGHTS[i] !== 0 || WEIGHTS[i + 3] !== 0;
};

/** Msssim::Score: weights taken in (channel, scale, norm) order, as the reference walks them. */
function score(scales: number[][][]): number {
  let sum = 0;
  let i = 0;
  for (let c = 0; c < 3; c++) {
    for (const scale of scales) {
      const e = scale[c]!;
      for (let n = 0; n < 2; n++) {
        sum += WEIGHTS[i++]! * Math.abs(e[n]!);
        sum += WEIGHTS[i++]! * Math.abs(e[2 + n]!);
        sum += WEIGHTS[i++]! * Math.abs(e[4 + n]!);
      }
    }
  }
  sum *= 0.9562382616834844;
  sum = 2.326765642916932 * sum - 0.020884521182843837 * sum * sum + 6.248496625763138e-5 * sum * sum * sum;
  return sum > 0 ? 100 - 10 * sum ** 0.6276336467831387 : 100;
}

/** The reference's background for alpha (grey 0.5 in sRGB), unless the caller flattens first. */
export const SSIMULACRA2_ALPHA_BACKGROUND = 0.5;

/** An original prepared once; `compare` scores any candidate of the same size against it. */
export class Ssimulacra2Reference {
  private readonly arena: Arena;
  private disposed = false;
  private readonly scales: Scale[];
  /** the candidate's XYB and its maps, sized for the first scale and reused by the others */
  private readonly work: { xyb: number[]; mu: number; s22: number; s12: number; prod: number; temp: number; state: number; zeros: number; scratch: number; sums: number };

  constructor(
    readonly original: RawImage,
    private readonly background = SSIMULACRA2_ALPHA_BACKGROUND,
  ) {
    const sizes = scaleSizes(original.width, original.height);
    const n0 = original.width * original.height;
    const perScale = sizes.reduce((t, z) => t + z.width * z.height, 0);
    // 3 linear + 3 XYB + 3 blurred + up to 3 squares per scale; 3 XYB + 5 maps at full size; rows.
    this.arena = Arena.take(4 * (12 * perScale + 8 * n0 + 8 * original.width) + 48 + 16 * 128); // + alignment of each plane
    const a = this.arena;
    this.scales = sizes.map((z, s) => {
      const n = z.width * z.height;
      const plane = () => a.alloc(n);
      return {
        ...z,
        linear: [plane(), plane(), plane()],
        xyb: [plane(), plane(), plane()],
        mu: [plane(), plane(), plane()],
        sigmaSq: [0, 1, 2].map((c) => (ssimWeighted(sizes.length, s, c) ? plane() : 0)),
      };
    });
    this.work = {
      xyb: [a.alloc(n0), a.alloc(n0), a.alloc(n0)],
      mu: a.alloc(n0), s22: a.alloc(n0), s12: a.alloc(n0), prod: a.alloc(n0), temp: a.alloc(n0),
      state: a.alloc(6 * (original.width + 3)), zeros: a.alloc(original.width), scratch: a.alloc(original.width), sums: a.alloc(12),
    };
    const { k } = a;
    const w = this.work;
    a.f32(w.zeros, original.width).fill(0); // a reused arena holds old planes
    this.linearize(original);
    for (const z of this.scales) {
      const n = z.width * z.height;
      k.to_xyb(z.linear[0]!, z.linear[1]!, z.linear[2]!, z.xyb[0]!, z.xyb[1]!, z.xyb[2]!, n);
      for (let c = 0; c < 3; c++) {
        k.blur(z.xyb[c]!, z.mu[c]!, w.temp, z.width, z.height, w.state, w.zeros, w.scratch);
        if (!z.sigmaSq[c]) continue;
        k.product(z.xyb[c]!, z.xyb[c]!, w.prod, n);
        k.blur(w.prod, z.sigmaSq[c]!, w.temp, z.width, z.height, w.state, w.zeros, w.scratch);
      }
    }
  }

  /** `img` to linear RGB at every scale (the scales' linear planes). */
  private linearize(img: RawImage): void {
    const { arena: a, scales } = this;
    const first = scales[0];
    if (!first) return;
    toLinear(img, this.background, first.linear.map((p) => a.f32(p, first.width * first.height)));
    for (let s = 1; s < scales.length; s++) {
      const from = scales[s - 1]!;
      for (let c = 0; c < 3; c++) a.k.downsample(from.linear[c]!, scales[s]!.linear[c]!, from.width, from.height);
    }
  }

  /** Hands the memory to the next reference; this one must not be used after. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena.give();
  }

  /** SSIMULACRA 2 score of `distorted` (same size): 100 identical, 90 visually lossless, lower is worse. */
  compare(distorted: RawImage): number {
    if (this.disposed) throw new Error('ssimulacra2: reference used after dispose()');
    if (distorted.width !== this.original.width || distorted.height !== this.original.height) {
      throw new Error(`ssimulacra2: sizes differ (${distorted.width}×${distorted.height} vs ${this.original.width}×${this.original.height})`);
    }
    const { arena: a, work: w } = this;
    const { k } = a;
    this.linearize(distorted);
    const errors = this.scales.map((z) => {
      const n = z.width * z.height;
      k.to_xyb(z.linear[0]!, z.linear[1]!, z.linear[2]!, w.xyb[0]!, w.xyb[1]!, w.xyb[2]!, n);
      return [0, 1, 2].map((c) => {
        const img2 = w.xyb[c]!;
        k.blur(img2, w.mu, w.temp, z.width, z.height, w.state, w.zeros, w.scratch);
        if (z.sigmaSq[c]) {
          k.product(img2, img2, w.prod, n);
          k.blur(w.prod, w.s22, w.temp, z.width, z.height, w.state, w.zeros, w.scratch);
          k.product(z.xyb[c]!, img2, w.prod, n);
          k.blur(w.prod, w.s12, w.temp, z.width, z.height, w.state, w.zeros, w.scratch);
        }
        k.error_maps(z.xyb[c]!, z.mu[c]!, z.sigmaSq[c]!, img2, w.mu, w.s22, w.s12, n, w.sums);
        const [ssim1, ssim4, ring1, ring4, blur1, blur4] = a.f64(w.sums, 6) as unknown as number[];
        const norm4 = (v: number) => Math.sqrt(Math.sqrt(v / n));
        return [ssim1! / n, norm4(ssim4!), ring1! / n, norm4(ring4!), blur1! / n, norm4(blur4!)];
      });
    });
    return score(errors);
  }
}

/** One-off score of `distorted` against `original`. */
export function ssimulacra2(original: RawImage, distorted: RawImage): number {
  const meter = new Ssimulacra2Reference(original);
  try {
    return meter.compare(distorted);
  } finally {
    meter.dispose();
  }
}
