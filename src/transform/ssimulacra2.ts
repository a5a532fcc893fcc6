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
 * The reference computes in float32 with fused multiply-adds; this port keeps planes in Float32Array
 * and does arithmetic in doubles, so scores agree with the reference to a few hundredths
 * (test/transform/ssimulacra2.test.ts holds values the reference binary printed).
 *
 * The original's side (its pyramid, blurred means and variances) is prepared once per reference,
 * so comparing a candidate costs 3 blurred maps per channel and scale instead of 5.
 */
import type { RawImage } from './types.js';

type Plane = Float32Array;
type Planes3 = [Plane, Plane, Plane];

interface Level {
  width: number;
  height: number;
  linear: Planes3;
}

interface ReferenceLevel extends Level {
  xyb: Planes3;
  mu: Planes3;
  /** per channel: the blurred square, or undefined where the SSIM map's weights are zero */
  sigmaSq: (Plane | undefined)[];
}

const NUM_SCALES = 6;
const C2 = 0.0009;

/** sRGB 8-bit → linear, the exact sRGB transfer function. */
const LINEAR = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const v = i / 255;
  LINEAR[i] = v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}
const srgbToLinear = (v: number) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);

/** Opsin absorbance (lib/jxl/cms/opsin_params.h). */
const M = [0.3, 0.622, 0.078, 0.23, 0.692, 0.078, 0.24342268924547819, 0.20476744424496821, 0.5518098665095536] as const;
const BIAS = 0.0037930732552754493;
const NEG_BIAS_CBRT = -Math.cbrt(BIAS);

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

/** Blurs one plane: the recursive filter along rows, then along columns; zero outside the image. */
function blur(input: Plane, width: number, height: number, out: Plane = new Float32Array(width * height)): Plane {
  const { radius: N, n2, d1 } = RG;
  const [n21, n23, n25] = n2 as [number, number, number];
  const [d11, d13, d15] = d1 as [number, number, number];
  const temp = new Float32Array(width * height);
  // Outputs are rounded to float as the reference's filter state is (it brings scores 2–3× closer).
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let p1 = 0, p3 = 0, p5 = 0, q1 = 0, q3 = 0, q5 = 0; // previous and second previous outputs
    const step = (n: number, sum: number) => {
      const o1 = Math.fround(n21 * sum - d11 * p1 - q1);
      const o3 = Math.fround(n23 * sum - d13 * p3 - q3);
      const o5 = Math.fround(n25 * sum - d15 * p5 - q5);
      q1 = p1; q3 = p3; q5 = p5;
      p1 = o1; p3 = o3; p5 = o5;
      if (n >= 0) temp[row + n] = o1 + o3 + o5;
    };
    // Borders with bounds checks; between them both taps are inside the row.
    const inner = Math.max(N + 1, -N + 1);
    const innerEnd = Math.max(inner, width - N + 1);
    let n = -N + 1;
    for (; n < Math.min(inner, width); n++) step(n, (n - N - 1 >= 0 ? input[row + n - N - 1]! : 0) + (n + N - 1 < width ? input[row + n + N - 1]! : 0));
    for (; n < innerEnd; n++) {
      const sum = input[row + n - N - 1]! + input[row + n + N - 1]!;
      const o1 = Math.fround(n21 * sum - d11 * p1 - q1);
      const o3 = Math.fround(n23 * sum - d13 * p3 - q3);
      const o5 = Math.fround(n25 * sum - d15 * p5 - q5);
      q1 = p1; q3 = p3; q5 = p5;
      p1 = o1; p3 = o3; p5 = o5;
      temp[row + n] = o1 + o3 + o5;
    }
    for (; n < width; n++) step(n, (n - N - 1 >= 0 ? input[row + n - N - 1]! : 0) + (n + N - 1 < width ? input[row + n + N - 1]! : 0));
  }
  // Columns, a row at a time: each column's two previous outputs per filter sit side by side.
  // Rows outside the image read from a row of zeros; outputs before row 0 go to a scratch row.
  const state = new Float32Array(width * 6); // p1 p3 p5 q1 q3 q5 per column
  const zeros = new Float32Array(width);
  const scratch = new Float32Array(width);
  for (let n = -N + 1; n < height; n++) {
    const top = n - N - 1;
    const bottom = n + N - 1;
    const a = top >= 0 ? temp : zeros;
    const aOff = top >= 0 ? top * width : 0;
    const b = bottom < height ? temp : zeros;
    const bOff = bottom < height ? bottom * width : 0;
    const o = n >= 0 ? out : scratch;
    const oOff = n >= 0 ? n * width : 0;
    for (let x = 0, k = 0; x < width; x++, k += 6) {
      const sum = a[aOff + x]! + b[bOff + x]!;
      const p1 = state[k]!, p3 = state[k + 1]!, p5 = state[k + 2]!;
      const o1 = Math.fround(n21 * sum - d11 * p1 - state[k + 3]!);
      const o3 = Math.fround(n23 * sum - d13 * p3 - state[k + 4]!);
      const o5 = Math.fround(n25 * sum - d15 * p5 - state[k + 5]!);
      state[k] = o1; state[k + 1] = o3; state[k + 2] = o5;
      state[k + 3] = p1; state[k + 4] = p3; state[k + 5] = p5;
      o[oOff + x] = o1 + o3 + o5;
    }
  }
  return out;
}

/** Linear RGB planes of an 8-bit sRGB image; alpha blended over `background` (sRGB 0..1). */
function toLinear(img: RawImage, background: number): Level {
  const { width, height, channels, data } = img;
  const size = width * height;
  const planes: Planes3 = [new Float32Array(size), new Float32Array(size), new Float32Array(size)];
  for (let i = 0, o = 0; i < size; i++, o += channels) {
    if (channels === 4) {
      const a = data[o + 3]! / 255;
      for (let c = 0; c < 3; c++) planes[c]![i] = srgbToLinear(a * (data[o + c]! / 255) + (1 - a) * background);
    } else if (channels >= 3) {
      for (let c = 0; c < 3; c++) planes[c]![i] = LINEAR[data[o + c]!]!;
    } else {
      const v = LINEAR[data[o]!]!;
      planes[0][i] = planes[1][i] = planes[2][i] = v;
    }
  }
  return { width, height, linear: planes };
}

function downsample(level: Level): Level {
  const { width, height, linear } = level;
  const w = (width + 1) >> 1;
  const h = (height + 1) >> 1;
  const out = linear.map(() => new Float32Array(w * h)) as Planes3;
  for (let c = 0; c < 3; c++) {
    const src = linear[c]!;
    const dst = out[c]!;
    for (let oy = 0; oy < h; oy++) {
      const y0 = Math.min(2 * oy, height - 1) * width;
      const y1 = Math.min(2 * oy + 1, height - 1) * width;
      for (let ox = 0; ox < w; ox++) {
        const x0 = Math.min(2 * ox, width - 1);
        const x1 = Math.min(2 * ox + 1, width - 1);
        dst[oy * w + ox] = (src[y0 + x0]! + src[y0 + x1]! + src[y1 + x0]! + src[y1 + x1]!) * 0.25;
      }
    }
  }
  return { width: w, height: h, linear: out };
}

/** XYB, made positive as SSIMULACRA 2.1 does (MakePositiveXYB). */
function toXyb(level: Level): Planes3 {
  const [r, g, b] = level.linear;
  const size = level.width * level.height;
  const out: Planes3 = [new Float32Array(size), new Float32Array(size), new Float32Array(size)];
  const [X, Y, B] = out;
  for (let i = 0; i < size; i++) {
    const R = r[i]!, G = g[i]!, Bl = b[i]!;
    const m0 = Math.cbrt(Math.max(0, M[0] * R + M[1] * G + M[2] * Bl + BIAS)) + NEG_BIAS_CBRT;
    const m1 = Math.cbrt(Math.max(0, M[3] * R + M[4] * G + M[5] * Bl + BIAS)) + NEG_BIAS_CBRT;
    const m2 = Math.cbrt(Math.max(0, M[6] * R + M[7] * G + M[8] * Bl + BIAS)) + NEG_BIAS_CBRT;
    const y = 0.5 * (m0 + m1);
    X[i] = 0.5 * (m0 - m1) * 14 + 0.42;
    Y[i] = y + 0.01;
    B[i] = m2 - y + 0.55;
  }
  return out;
}

function product(a: Plane, b: Plane): Plane {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * b[i]!;
  return out;
}

/** The 18 pooled errors of one scale, in the order the weights expect per channel: [ssim1, ssim4, ring1, ring4, blur1, blur4]. */
function scaleErrors(ref: ReferenceLevel, xyb2: Planes3): number[][] {
  const { width, height } = ref;
  const n = width * height;
  const perChannel: number[][] = [];
  for (let c = 0; c < 3; c++) {
    const img1 = ref.xyb[c]!;
    const img2 = xyb2[c]!;
    const mu1 = ref.mu[c]!;
    const mu2 = blur(img2, width, height);
    let ssim1 = 0, ssim4 = 0, ring1 = 0, ring4 = 0, blur1 = 0, blur4 = 0;
    const s11 = ref.sigmaSq[c];
    if (s11) {
      const s22 = blur(product(img2, img2), width, height);
      const s12 = blur(product(img1, img2), width, height);
      for (let i = 0; i < n; i++) {
        const m1 = mu1[i]!, m2 = mu2[i]!;
        const numM = 1 - (m1 - m2) * (m1 - m2);
        const numS = 2 * (s12[i]! - m1 * m2) + C2;
        const denS = s11[i]! - m1 * m1 + (s22[i]! - m2 * m2) + C2;
        const d = Math.max(0, 1 - (numM * numS) / denS);
        ssim1 += d;
        ssim4 += d * d * d * d;
      }
    }
    for (let i = 0; i < n; i++) {
      const m1 = mu1[i]!, m2 = mu2[i]!;
      const d1 = (1 + Math.abs(img2[i]! - m2)) / (1 + Math.abs(img1[i]! - m1)) - 1;
      if (d1 > 0) {
        ring1 += d1;
        ring4 += d1 * d1 * d1 * d1;
      } else {
        blur1 -= d1;
        blur4 += d1 * d1 * d1 * d1;
      }
    }
    perChannel.push([ssim1 / n, Math.sqrt(Math.sqrt(ssim4 / n)), ring1 / n, Math.sqrt(Math.sqrt(ring4 / n)), blur1 / n, Math.sqrt(Math.sqrt(blur4 / n))]);
  }
  return perChannel;
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
  private readonly levels: ReferenceLevel[] = [];

  constructor(
    readonly original: RawImage,
    private readonly background = SSIMULACRA2_ALPHA_BACKGROUND,
  ) {
    let level = toLinear(original, background);
    const levels: Level[] = [];
    // The reference checks the previous scale's size, so the last scale may be under 8 px.
    for (let s = 0; s < NUM_SCALES && level.width >= 8 && level.height >= 8; s++) {
      if (s > 0) level = downsample(level);
      levels.push(level);
    }
    levels.forEach((l, s) => {
      const xyb = toXyb(l);
      const mu = xyb.map((p) => blur(p, l.width, l.height)) as Planes3;
      const sigmaSq = xyb.map((p, c) => (ssimWeighted(levels.length, s, c) ? blur(product(p, p), l.width, l.height) : undefined));
      this.levels.push({ ...l, xyb, mu, sigmaSq });
    });
  }

  /** SSIMULACRA 2.1 score of `distorted` (same size): 100 identical, 90 visually lossless, lower is worse. */
  compare(distorted: RawImage): number {
    if (distorted.width !== this.original.width || distorted.height !== this.original.height) {
      throw new Error(`ssimulacra2: sizes differ (${distorted.width}×${distorted.height} vs ${this.original.width}×${this.original.height})`);
    }
    let level = toLinear(distorted, this.background);
    const scales: number[][][] = [];
    this.levels.forEach((ref, s) => {
      if (s > 0) level = downsample(level);
      scales.push(scaleErrors(ref, toXyb(level)));
    });
    return score(scales);
  }
}

/** One-off score of `distorted` against `original`. */
export function ssimulacra2(original: RawImage, distorted: RawImage): number {
  return new Ssimulacra2Reference(original).compare(distorted);
}

/** Distance form used in reports: 0 identical, 10 ≈ visually lossless, 30 ≈ high quality. */
export const ssimulacra2Distance = (score: number) => 100 - score;
