/*
 * SSIMULACRA 2.1 pixel kernels, compiled to WebAssembly (128-bit SIMD) by `npm run build:wasm`.
 * src/transform/ssimulacra2.ts owns the algorithm's structure (scales, weights, scoring, sRGB
 * decoding) and calls these loops on planes it lays out in this module's memory. Each kernel
 * follows libjxl's reference (tools/ssimulacra2.cc, tools/gauss_blur.cc, lib/jxl/enc_xyb.cc):
 * float planes, float filter state, doubles where the reference pools in double.
 * No libc: clang --target=wasm32 -nostdlib.
 */
#include <wasm_simd128.h>

typedef float f32;
typedef double f64;

/* Recursive Gaussian (Charalampidis 2016) coefficients, computed by the caller in double and rounded to float. */
static f32 N2[3], D1[3];
static int RADIUS;

void set_gaussian(f32 n21, f32 n23, f32 n25, f32 d11, f32 d13, f32 d15, int radius) {
  N2[0] = n21; N2[1] = n23; N2[2] = n25;
  D1[0] = d11; D1[1] = d13; D1[2] = d15;
  RADIUS = radius;
}

/*
 * The recursion y = n2·sum − d1·y' − y'' is computed in double and rounded to float once per step:
 * the reference does it in float with fused multiply-adds (one or two roundings), and the score is
 * sensitive to it (four separate float roundings move a score by up to ~0.5). So four lanes of
 * float are carried as two pairs of doubles.
 */
static inline v128_t lo64(v128_t f) { return wasm_f64x2_promote_low_f32x4(f); }
static inline v128_t hi64(v128_t f) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(f, f, 2, 3, 0, 1)); }
static inline v128_t to32(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}
static inline v128_t round32(v128_t d) { return wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(d)); }
static inline v128_t step(v128_t n2, v128_t d1, v128_t sum, v128_t p, v128_t q) {
  return round32(wasm_f64x2_sub(wasm_f64x2_sub(wasm_f64x2_mul(n2, sum), wasm_f64x2_mul(d1, p)), q));
}

/* Rows: four rows at once (two pairs of double lanes); the recursion runs along x. Zero outside the row. */
static void blur_rows(const f32 *in, f32 *out, int w, int h) {
  const int N = RADIUS;
  const v128_t n1 = wasm_f64x2_splat(N2[0]), n3 = wasm_f64x2_splat(N2[1]), n5 = wasm_f64x2_splat(N2[2]);
  const v128_t d1 = wasm_f64x2_splat(D1[0]), d3 = wasm_f64x2_splat(D1[1]), d5 = wasm_f64x2_splat(D1[2]);
  int y = 0;
  for (; y < h; y += 4) {
    /* the last group repeats its last row where fewer than four are left (written once, same values) */
    const int y1 = y + 1 < h ? y + 1 : h - 1, y2 = y + 2 < h ? y + 2 : h - 1, y3 = y + 3 < h ? y + 3 : h - 1;
    const f32 *r0 = in + (long)y * w, *r1 = in + (long)y1 * w, *r2 = in + (long)y2 * w, *r3 = in + (long)y3 * w;
    f32 *o0 = out + (long)y * w, *o1 = out + (long)y1 * w, *o2 = out + (long)y2 * w, *o3 = out + (long)y3 * w;
    const v128_t z = wasm_f64x2_splat(0);
    v128_t p1l = z, p3l = z, p5l = z, q1l = z, q3l = z, q5l = z, p1h = z, p3h = z, p5h = z, q1h = z, q3h = z, q5h = z;
    for (int n = -N + 1; n < w; n++) {
      const int l = n - N - 1, r = n + N - 1;
      v128_t sum = wasm_f32x4_splat(0);
      if (l >= 0) sum = wasm_f32x4_make(r0[l], r1[l], r2[l], r3[l]);
      if (r < w) sum = wasm_f32x4_add(sum, wasm_f32x4_make(r0[r], r1[r], r2[r], r3[r]));
      const v128_t sl = lo64(sum), sh = hi64(sum);
      const v128_t al = step(n1, d1, sl, p1l, q1l), bl = step(n3, d3, sl, p3l, q3l), cl = step(n5, d5, sl, p5l, q5l);
      const v128_t ah = step(n1, d1, sh, p1h, q1h), bh = step(n3, d3, sh, p3h, q3h), ch = step(n5, d5, sh, p5h, q5h);
      q1l = p1l; q3l = p3l; q5l = p5l; p1l = al; p3l = bl; p5l = cl;
      q1h = p1h; q3h = p3h; q5h = p5h; p1h = ah; p3h = bh; p5h = ch;
      if (n >= 0) {
        const v128_t o = to32(wasm_f64x2_add(al, wasm_f64x2_add(bl, cl)), wasm_f64x2_add(ah, wasm_f64x2_add(bh, ch)));
        o0[n] = wasm_f32x4_extract_lane(o, 0);
        o1[n] = wasm_f32x4_extract_lane(o, 1);
        o2[n] = wasm_f32x4_extract_lane(o, 2);
        o3[n] = wasm_f32x4_extract_lane(o, 3);
      }
    }
  }
}

/* Columns: four columns per step, a row at a time; `state` holds 6 floats per column (w rounded up to 4). */
static void blur_columns(const f32 *in, f32 *out, int w, int h, f32 *state, const f32 *zeros, f32 *scratch) {
  const int N = RADIUS;
  const v128_t n1 = wasm_f64x2_splat(N2[0]), n3 = wasm_f64x2_splat(N2[1]), n5 = wasm_f64x2_splat(N2[2]);
  const v128_t d1 = wasm_f64x2_splat(D1[0]), d3 = wasm_f64x2_splat(D1[1]), d5 = wasm_f64x2_splat(D1[2]);
  const int wv = (w + 3) & ~3;
  for (int i = 0; i < 6 * wv; i++) state[i] = 0;
  for (int n = -N + 1; n < h; n++) {
    const int top = n - N - 1, bottom = n + N - 1;
    const f32 *a = top >= 0 ? in + (long)top * w : zeros;
    const f32 *b = bottom < h ? in + (long)bottom * w : zeros;
    f32 *o = n >= 0 ? out + (long)n * w : scratch;
    for (int x = 0; x < wv; x += 4) {
      f32 *s = state + 6 * x; /* six vectors of four columns: p1 p3 p5 q1 q3 q5 */
      v128_t sum;
      if (x + 4 <= w) {
        sum = wasm_f32x4_add(wasm_v128_load(a + x), wasm_v128_load(b + x));
      } else { /* the last columns: lanes past the width compute garbage that is never stored */
        f32 t[4] = {0, 0, 0, 0};
        for (int k = 0; x + k < w; k++) t[k] = a[x + k] + b[x + k];
        sum = wasm_v128_load(t);
      }
      const v128_t sl = lo64(sum), sh = hi64(sum);
      const v128_t P1 = wasm_v128_load(s), P3 = wasm_v128_load(s + 4), P5 = wasm_v128_load(s + 8);
      const v128_t Q1 = wasm_v128_load(s + 12), Q3 = wasm_v128_load(s + 16), Q5 = wasm_v128_load(s + 20);
      const v128_t al = step(n1, d1, sl, lo64(P1), lo64(Q1)), ah = step(n1, d1, sh, hi64(P1), hi64(Q1));
      const v128_t bl = step(n3, d3, sl, lo64(P3), lo64(Q3)), bh = step(n3, d3, sh, hi64(P3), hi64(Q3));
      const v128_t cl = step(n5, d5, sl, lo64(P5), lo64(Q5)), ch = step(n5, d5, sh, hi64(P5), hi64(Q5));
      wasm_v128_store(s + 12, P1); wasm_v128_store(s + 16, P3); wasm_v128_store(s + 20, P5);
      wasm_v128_store(s, to32(al, ah)); wasm_v128_store(s + 4, to32(bl, bh)); wasm_v128_store(s + 8, to32(cl, ch));
      const v128_t total = to32(wasm_f64x2_add(al, wasm_f64x2_add(bl, cl)), wasm_f64x2_add(ah, wasm_f64x2_add(bh, ch)));
      if (x + 4 <= w) {
        wasm_v128_store(o + x, total);
      } else {
        f32 t[4];
        wasm_v128_store(t, total);
        for (int k = 0; x + k < w; k++) o[x + k] = t[k];
      }
    }
  }
}

/* Blur of one plane; `temp` is a plane, `state` 6·(w+3) floats, `zeros` and `scratch` w floats each. */
void blur(const f32 *in, f32 *out, f32 *temp, int w, int h, f32 *state, const f32 *zeros, f32 *scratch) {
  blur_rows(in, temp, w, h);
  blur_columns(temp, out, w, h, state, zeros, scratch);
}

void product(const f32 *a, const f32 *b, f32 *out, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) out[i] = a[i] * b[i];
}

/* 2×2 box average with clamped edges (the reference's Downsample). */
void downsample(const f32 *in, f32 *out, int w, int h) {
  const int ow = (w + 1) / 2, oh = (h + 1) / 2;
  for (int oy = 0; oy < oh; oy++) {
    const f32 *r0 = in + (long)(2 * oy < h ? 2 * oy : h - 1) * w;
    const f32 *r1 = in + (long)(2 * oy + 1 < h ? 2 * oy + 1 : h - 1) * w;
    for (int ox = 0; ox < ow; ox++) {
      const int x0 = 2 * ox < w ? 2 * ox : w - 1, x1 = 2 * ox + 1 < w ? 2 * ox + 1 : w - 1;
      out[oy * ow + ox] = (r0[x0] + r0[x1] + r1[x0] + r1[x1]) * 0.25f;
    }
  }
}

/* Cube root of x ≥ 0 to float precision: exponent-thirding guess, then three Newton steps. */
static v128_t cbrt4(v128_t x) {
  const v128_t third = wasm_f32x4_splat(1.f / 3.f), two = wasm_f32x4_splat(2.f);
  /* The float's bits as an integer, divided by 3, plus the exponent bias's share (Kahan's guess). */
  v128_t y = wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(x), third)), wasm_i32x4_splat(709921077));
  for (int k = 0; k < 2; k++) y = wasm_f32x4_mul(third, wasm_f32x4_add(wasm_f32x4_mul(two, y), wasm_f32x4_div(x, wasm_f32x4_mul(y, y))));
  /* a last Newton step in double: float steps stall a few ulps short, and the score notices */
  const v128_t t3 = wasm_f64x2_splat(1.0 / 3.0), t2 = wasm_f64x2_splat(2.0);
  v128_t yl = lo64(y), yh = hi64(y);
  const v128_t xl = lo64(x), xh = hi64(x);
  yl = wasm_f64x2_mul(t3, wasm_f64x2_add(wasm_f64x2_mul(t2, yl), wasm_f64x2_div(xl, wasm_f64x2_mul(yl, yl))));
  yh = wasm_f64x2_mul(t3, wasm_f64x2_add(wasm_f64x2_mul(t2, yh), wasm_f64x2_div(xh, wasm_f64x2_mul(yh, yh))));
  return to32(yl, yh);
}

/* Linear sRGB → XYB (opsin absorbance, cube root), made positive as SSIMULACRA 2.1 does. */
void to_xyb(const f32 *r, const f32 *g, const f32 *b, f32 *X, f32 *Y, f32 *B, int n) {
  const f32 bias = 0.0037930732552754493f;
  const v128_t vb = wasm_f32x4_splat(bias), zero = wasm_f32x4_splat(0);
  const v128_t nb = wasm_f32x4_splat(-0.15595420054924863f); /* -cbrt(bias) */
  const v128_t m00 = wasm_f32x4_splat(0.30f), m01 = wasm_f32x4_splat(0.622f), m02 = wasm_f32x4_splat(0.078f);
  const v128_t m10 = wasm_f32x4_splat(0.23f), m11 = wasm_f32x4_splat(0.692f), m12 = wasm_f32x4_splat(0.078f);
  const v128_t m20 = wasm_f32x4_splat(0.24342268924547819f), m21 = wasm_f32x4_splat(0.20476744424496821f), m22 = wasm_f32x4_splat(0.5518098665095536f);
  const v128_t half = wasm_f32x4_splat(0.5f), k14 = wasm_f32x4_splat(14.f), k042 = wasm_f32x4_splat(0.42f);
  const v128_t k001 = wasm_f32x4_splat(0.01f), k055 = wasm_f32x4_splat(0.55f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t R = wasm_v128_load(r + i), G = wasm_v128_load(g + i), Bl = wasm_v128_load(b + i);
    v128_t a0 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(m00, R), wasm_f32x4_mul(m01, G)), wasm_f32x4_mul(m02, Bl)), vb);
    v128_t a1 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(m10, R), wasm_f32x4_mul(m11, G)), wasm_f32x4_mul(m12, Bl)), vb);
    v128_t a2 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(m20, R), wasm_f32x4_mul(m21, G)), wasm_f32x4_mul(m22, Bl)), vb);
    a0 = wasm_f32x4_add(cbrt4(wasm_f32x4_max(a0, zero)), nb);
    a1 = wasm_f32x4_add(cbrt4(wasm_f32x4_max(a1, zero)), nb);
    a2 = wasm_f32x4_add(cbrt4(wasm_f32x4_max(a2, zero)), nb);
    const v128_t y = wasm_f32x4_mul(half, wasm_f32x4_add(a0, a1));
    wasm_v128_store(X + i, wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(half, wasm_f32x4_sub(a0, a1)), k14), k042));
    wasm_v128_store(Y + i, wasm_f32x4_add(y, k001));
    wasm_v128_store(B + i, wasm_f32x4_add(wasm_f32x4_sub(a2, y), k055));
  }
  for (; i < n; i++) {
    const f32 R = r[i], G = g[i], Bl = b[i];
    f32 v[3] = {0.30f * R + 0.622f * G + 0.078f * Bl + bias, 0.23f * R + 0.692f * G + 0.078f * Bl + bias,
                0.24342268924547819f * R + 0.20476744424496821f * G + 0.5518098665095536f * Bl + bias};
    for (int k = 0; k < 3; k++) v[k] = wasm_f32x4_extract_lane(cbrt4(wasm_f32x4_splat(v[k] > 0 ? v[k] : 0)), 0) - 0.15595420054924863f;
    const f32 y = 0.5f * (v[0] + v[1]);
    X[i] = 0.5f * (v[0] - v[1]) * 14.f + 0.42f;
    Y[i] = y + 0.01f;
    B[i] = v[2] - y + 0.55f;
  }
}

static f64 quartic(f64 d) { d *= d; return d * d; }

/*
 * One channel at one scale: SSIM map (when s11 is non-null) and the edge-difference maps, pooled
 * into out[0..5] = sums of ssim, ssim⁴, ringing, ringing⁴, blurring, blurring⁴ (the caller divides).
 */
void error_maps(const f32 *img1, const f32 *mu1, const f32 *s11, const f32 *img2, const f32 *mu2, const f32 *s22, const f32 *s12, int n, f64 *out) {
  f64 ssim1 = 0, ssim4 = 0, ring1 = 0, ring4 = 0, blur1 = 0, blur4 = 0;
  const f32 c2 = 0.0009f;
  for (int i = 0; i < n; i++) {
    const f32 m1 = mu1[i], m2 = mu2[i];
    if (s11) {
      const f32 num_m = 1.0f - (m1 - m2) * (m1 - m2);
      const f32 num_s = 2 * (s12[i] - m1 * m2) + c2;
      const f32 denom_s = (s11[i] - m1 * m1) + (s22[i] - m2 * m2) + c2;
      f64 d = 1.0 - (f64)(num_m * num_s / denom_s);
      if (d < 0) d = 0;
      ssim1 += d;
      ssim4 += quartic(d);
    }
    const f32 e2 = img2[i] - m2, e1 = img1[i] - m1;
    const f64 d1 = (1.0 + (f64)(e2 < 0 ? -e2 : e2)) / (1.0 + (f64)(e1 < 0 ? -e1 : e1)) - 1.0;
    if (d1 > 0) { ring1 += d1; ring4 += quartic(d1); }
    else { blur1 -= d1; blur4 += quartic(d1); }
  }
  out[0] = ssim1; out[1] = ssim4; out[2] = ring1; out[3] = ring4; out[4] = blur1; out[5] = blur4;
}
