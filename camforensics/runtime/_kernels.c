/*
 * Native kernels of the classical engine: the periodic 2-D DWT passes and the local adaptive Wiener rule, in
 * float32 on C-contiguous arrays. Optional: camforensics.runtime.native loads this library with ctypes (which lets
 * go of the GIL during each call, so the engine's row-strip threads run them in parallel) and falls back to the
 * OpenCV implementation when it is missing. Every function works on a range of output rows so that callers can
 * split an array over threads; nothing here keeps state between calls.
 *
 * Conventions (those of camforensics/core/dwt.py, checked against pywt in the tests):
 *   analysis   y[k] = sum_j f[j] x[(2k + s - j) mod n],          s = L / 2
 *   synthesis  x[o] = sum_k c[k] g[(o - 2k + t)],  k periodic,   t = L / 2 - 1
 * for a filter of even length L (pywt's dec_lo/dec_hi and rec_lo/rec_hi).
 *
 * The loops are written element-wise along rows so that compilers vectorise them without reordering sums; on
 * x86-64 Linux with GCC or Clang an AVX2 clone of each kernel is chosen at load time when the CPU
 * has it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>

#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#define CF_API __declspec(dllexport)
#else
#define CF_API __attribute__((visibility("default")))
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__)
#define CF_SIMD __attribute__((target_clones("avx2", "default")))
#else
#define CF_SIMD
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CF_INLINE static inline __attribute__((always_inline)) /* compiled into each clone of its callers */
#else
#define CF_INLINE static inline
#endif

#define CF_MAX_TAPS 64
#define CF_MAX_WINDOWS 8
#define CF_MAX_RADIUS 32

static long wrap(long i, long n)
{
    i %= n;
    return i < 0 ? i + n : i;
}

/* Version of this kernel set; the loader refuses a library of another version (a stale build). */
CF_API int cf_version(void) { return 2; }

/*
 * Weighted sums of rows, the inner loop of every DWT pass: y[k] = sum_t wt[t] * src[t][k] for k < w (and a second
 * output yh with weights wh from the same sources). Columns go in blocks of 32 held in vector registers across
 * all the terms, so each block is loaded once per term and stored once.
 */
#if defined(__GNUC__) || defined(__clang__)
typedef float v8f __attribute__((vector_size(32)));
CF_INLINE v8f load8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
CF_INLINE void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }
typedef int v8i __attribute__((vector_size(32)));
CF_INLINE v8f min8(v8f a, v8f b) /* lane-wise a < b ? a : b (C has no vector ?:) */
{
    const v8i m = a < b;
    return (v8f)(((v8i)a & m) | ((v8i)b & ~m));
}
CF_INLINE v8f max8(v8f a, v8f b) /* lane-wise a > b ? a : b */
{
    const v8i m = a > b;
    return (v8f)(((v8i)a & m) | ((v8i)b & ~m));
}
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define CF_SHUFFLE 1
#endif
#endif
CF_INLINE v8f hsum8(const float *v, int q) /* v[k-q] + ... + v[k+q] for 8 consecutive k (loop unrolled for a constant q) */
{
    v8f s = load8(v);
    for (int d = 1; d <= q; d++) s += load8(v - d) + load8(v + d);
    return s;
}
#define CF_VECTORS 1
#endif

CF_INLINE void combine(float *restrict y, float *restrict yh, const float *const *src, const float *wt,
                           const float *wh, int nt, int w)
{
    int k = 0;
#ifdef CF_VECTORS
    for (; k + 32 <= w; k += 32) {
        v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        for (int t = 0; t < nt; t++) {
            const float *p = src[t] + k;
            const v8f x0 = load8(p), x1 = load8(p + 8), x2 = load8(p + 16), x3 = load8(p + 24);
            const float c = wt[t];
            a0 += c * x0;
            a1 += c * x1;
            a2 += c * x2;
            a3 += c * x3;
            if (yh) {
                const float d = wh[t];
                b0 += d * x0;
                b1 += d * x1;
                b2 += d * x2;
                b3 += d * x3;
            }
        }
        store8(y + k, a0);
        store8(y + k + 8, a1);
        store8(y + k + 16, a2);
        store8(y + k + 24, a3);
        if (yh) {
            store8(yh + k, b0);
            store8(yh + k + 8, b1);
            store8(yh + k + 16, b2);
            store8(yh + k + 24, b3);
        }
    }
#endif
    for (; k < w; k++) {
        float a = 0.0f, b = 0.0f;
        for (int t = 0; t < nt; t++) {
            a += wt[t] * src[t][k];
            if (yh) b += wh[t] * src[t][k];
        }
        y[k] = a;
        if (yh) yh[k] = b;
    }
}

/* Vertical analysis of an h x w array (h even): rows k0..k1-1 of lo and hi (each (h/2) x w). */
CF_API CF_SIMD int cf_dwt_cols(const float *x, int h, int w, float *lo, float *hi, int k0, int k1, const float *flo,
                              const float *fhi, int n)
{
    if (n < 2 || n > CF_MAX_TAPS || n % 2 || h % 2) return -1;
    const int s = n / 2;
    const float *src[CF_MAX_TAPS];
    for (int k = k0; k < k1; k++) {
        for (int j = 0; j < n; j++) src[j] = x + (size_t)wrap(2L * k + s - j, h) * w;
        combine(lo + (size_t)k * w, hi + (size_t)k * w, src, flo, fhi, n, w);
    }
    return 0;
}

/* even[i] = row[(2i - pad) mod w], odd[i] = row[(2i + 1 - pad) mod w] for i < m (pad even, w even). */
CF_INLINE void split_periodic(const float *restrict row, int w, int pad, float *restrict even, float *restrict odd, int m)
{
    const int lo = pad / 2, hi = lo + w / 2; /* i in [lo, hi) reads the row without wrapping */
    for (int i = 0; i < m; i++) {
        if (i == lo && hi <= m) {
            const float *restrict r = row + (2L * i - pad);
            int q = 0;
#ifdef CF_SHUFFLE
            for (; q + 8 <= w / 2; q += 8) {
                const v8f a = load8(r + 2 * q), b = load8(r + 2 * q + 8);
                store8(even + i + q, __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14));
                store8(odd + i + q, __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15));
            }
#endif
            for (; q < w / 2; q++) {
                even[i + q] = r[2 * q];
                odd[i + q] = r[2 * q + 1];
            }
            i = hi - 1;
            continue;
        }
        even[i] = row[wrap(2L * i - pad, w)];
        odd[i] = row[wrap(2L * i + 1 - pad, w)];
    }
}

/* ext[i] = row[(i - pad) mod w] for i < m (row may be NULL: zeros). */
CF_INLINE void extend_periodic(const float *restrict row, int w, int pad, float *restrict ext, int m)
{
    if (!row) {
        memset(ext, 0, sizeof(float) * (size_t)m);
        return;
    }
    for (int i = 0; i < m; i++) {
        if (i == pad && pad + w <= m) {
            memcpy(ext + pad, row, sizeof(float) * (size_t)w);
            i = pad + w - 1;
            continue;
        }
        ext[i] = row[wrap((long)i - pad, w)];
    }
}

/* Horizontal analysis of rows r0..r1-1 of an h x w array (w even) into lo and hi (each h x (w/2)). */
CF_API CF_SIMD int cf_dwt_rows(const float *x, int h, int w, float *lo, float *hi, int r0, int r1, const float *flo,
                              const float *fhi, int n)
{
    if (n < 2 || n > CF_MAX_TAPS || n % 2 || w % 2) return -1;
    (void)h;
    const int s = n / 2, pad = n, half = w / 2, m = (w + 2 * pad) / 2;
    float *buf = malloc(sizeof(float) * (size_t)(2 * m));
    if (!buf) return -2;
    float *even = buf, *odd = buf + m;
    const float *src[CF_MAX_TAPS];
    for (int j = 0; j < n; j++) {
        const int off = s - j + pad; /* y[k] reads ext[2k + off] */
        src[j] = (off & 1) ? odd + (off >> 1) : even + (off >> 1);
    }
    for (int r = r0; r < r1; r++) {
        split_periodic(x + (size_t)r * w, w, pad, even, odd, m);
        combine(lo + (size_t)r * half, hi + (size_t)r * half, src, flo, fhi, n, half);
    }
    free(buf);
    return 0;
}

/* Vertical synthesis: rows o0..o1-1 of out (2h x w) from lo and hi (each h x w); lo may be NULL (zeros). */
CF_API CF_SIMD int cf_idwt_cols(const float *lo, const float *hi, int h, int w, float *out, int o0, int o1,
                               const float *glo, const float *ghi, int n)
{
    if (n < 2 || n > CF_MAX_TAPS || n % 2) return -1;
    const int t = n / 2 - 1;
    const float *src[CF_MAX_TAPS];
    float wt[CF_MAX_TAPS];
    for (int o = o0; o < o1; o++) {
        const int p = o & 1, mm = o >> 1;
        int nt = 0;
        for (int i = 0; i < n; i++) {
            if ((p + t - i) % 2) continue;
            const size_t row = (size_t)wrap(mm + (p + t - i) / 2, h) * w;
            src[nt] = hi + row;
            wt[nt++] = ghi[i];
            if (lo) {
                src[nt] = lo + row;
                wt[nt++] = glo[i];
            }
        }
        combine(out + (size_t)o * w, NULL, src, wt, NULL, nt, w);
    }
    return 0;
}

/* Horizontal synthesis: rows r0..r1-1 of out (h x 2w) from lo and hi (each h x w); lo may be NULL (zeros). */
CF_API CF_SIMD int cf_idwt_rows(const float *lo, const float *hi, int h, int w, float *out, int r0, int r1,
                               const float *glo, const float *ghi, int n)
{
    if (n < 2 || n > CF_MAX_TAPS || n % 2) return -1;
    (void)h;
    const int t = n / 2 - 1, pad = n, m = w + 2 * pad;
    float *buf = malloc(sizeof(float) * (size_t)(2 * m + 2 * w));
    if (!buf) return -2;
    float *el = buf, *eh = buf + m, *ye = buf + 2 * m, *yo = ye + w;
    const float *src[2][CF_MAX_TAPS];
    float wt[2][CF_MAX_TAPS];
    int nt[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < n; i++) {
            if ((p + t - i) % 2) continue;
            const int off = (p + t - i) / 2 + pad; /* y[k] reads ext[k + off] */
            src[p][nt[p]] = eh + off;
            wt[p][nt[p]++] = ghi[i];
            if (lo) {
                src[p][nt[p]] = el + off;
                wt[p][nt[p]++] = glo[i];
            }
        }
    }
    for (int r = r0; r < r1; r++) {
        if (lo) extend_periodic(lo + (size_t)r * w, w, pad, el, m);
        extend_periodic(hi + (size_t)r * w, w, pad, eh, m);
        combine(ye, NULL, src[0], wt[0], NULL, nt[0], w);
        combine(yo, NULL, src[1], wt[1], NULL, nt[1], w);
        float *restrict dst = out + (size_t)r * 2 * w;
        int k = 0;
#ifdef CF_SHUFFLE
        for (; k + 8 <= w; k += 8) {
            const v8f e = load8(ye + k), o = load8(yo + k);
            store8(dst + 2 * k, __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11));
            store8(dst + 2 * k + 8, __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15));
        }
#endif
        for (; k < w; k++) {
            dst[2 * k] = ye[k];
            dst[2 * k + 1] = yo[k];
        }
    }
    free(buf);
    return 0;
}

/*
 * Local adaptive Wiener rule on rows r0..r1-1 of an h x w array c:
 *   local = max(min over windows of mean_w(c^2), s2)   (full square windows, zeros beyond the border)
 *   mode 0: out = s2 / local (the noise gain);  mode 1: out = c * s2 / local (the noise part).
 * radii: half-widths of the windows, increasing (windows 3, 5, 7, 9 -> 1, 2, 3, 4).
 */
CF_API CF_SIMD int cf_wiener(const float *c, float *out, int h, int w, int r0, int r1, float s2, const int *radii,
                            int nwin, int mode)
{
    if (nwin < 1 || nwin > CF_MAX_WINDOWS) return -1;
    for (int i = 0; i < nwin; i++)
        if (radii[i] < 0 || (i && radii[i] <= radii[i - 1])) return -1;
    const int R = radii[nwin - 1], stride = w + 2 * R;
    if (R > CF_MAX_RADIUS) return -1;
    float *buf = malloc(sizeof(float) * (size_t)nwin * stride);
    if (!buf) return -2;
    float *vs = buf; /* vertical window sums, R zeros on each side */
    for (int i = 0; i < nwin; i++) {
        memset(vs + (size_t)i * stride, 0, sizeof(float) * R);
        memset(vs + (size_t)i * stride + R + w, 0, sizeof(float) * R);
    }
    const float *rows[2 * CF_MAX_RADIUS + 1];
    float inv_area[CF_MAX_WINDOWS];
    for (int i = 0; i < nwin; i++) inv_area[i] = 1.0f / (float)((2 * radii[i] + 1) * (2 * radii[i] + 1));
    /* The default windows 3, 5, 7, 9: straight-line code over nine row pointers (a zero row stands for the rows
       beyond the border), unrolled by the compiler. Adding zeros leaves the sums exactly as the general path has them. */
    const int standard = nwin == 4 && radii[0] == 1 && radii[1] == 2 && radii[2] == 3 && radii[3] == 4;
    float *zero = standard ? calloc((size_t)w + 8, sizeof(float)) : NULL;
    if (standard && !zero) {
        free(buf);
        return -2;
    }
    for (int r = r0; r < r1; r++) {
        const float *restrict row = c + (size_t)r * w;
        float *restrict y = out + (size_t)r * w;
        int k = 0;
        if (standard) {
            const float *p[9];
            p[0] = row;
            for (int d = 1; d <= 4; d++) {
                p[2 * d - 1] = r - d >= 0 ? c + (size_t)(r - d) * w : zero;
                p[2 * d] = r + d < h ? c + (size_t)(r + d) * w : zero;
            }
#ifdef CF_VECTORS
            for (; k + 8 <= w; k += 8) {
                v8f x = load8(p[0] + k), sum = x * x;
                for (int q = 0; q < 4; q++) { /* rows r -+ (q + 1) join window q (a constant loop: unrolled) */
                    x = load8(p[2 * q + 1] + k), sum += x * x;
                    x = load8(p[2 * q + 2] + k), sum += x * x;
                    store8(vs + (size_t)q * stride + R + k, sum);
                }
            }
#endif
            for (; k < w; k++) { /* the same sums, one column at a time */
                float sum = 0.0f;
                for (int q = 0; q < 9; q++) {
                    sum += p[q][k] * p[q][k];
                    if (q && q % 2 == 0) vs[(size_t)(q / 2 - 1) * stride + R + k] = sum;
                }
            }
            k = 0;
#ifdef CF_VECTORS
            const v8f floor_ = {s2, s2, s2, s2, s2, s2, s2, s2};
            for (; k + 8 <= w; k += 8) {
                const float *v = vs + R + k; /* window q's sums start q rows of vs further */
                const v8f m1 = hsum8(v, 1) * inv_area[0], m2 = hsum8(v + stride, 2) * inv_area[1];
                const v8f m3 = hsum8(v + 2 * (size_t)stride, 3) * inv_area[2];
                const v8f m4 = hsum8(v + 3 * (size_t)stride, 4) * inv_area[3];
                /* the general path's order: min(m1, m2), then m3, then m4 */
                const v8f local = max8(min8(m4, min8(m3, min8(m2, m1))), floor_);
                const v8f gain = s2 / local;
                store8(y + k, mode ? load8(row + k) * gain : gain);
            }
#endif
        } else {
            /* rows r - d and r + d that exist, in the order the sums grow: centre, then pairs d = 1..R */
            int nrows = 0, upto[CF_MAX_WINDOWS];
            rows[nrows++] = row;
            for (int d = 0, next = 0; d <= R; d++) {
                if (d) {
                    if (r - d >= 0) rows[nrows++] = c + (size_t)(r - d) * w;
                    if (r + d < h) rows[nrows++] = c + (size_t)(r + d) * w;
                }
                if (next < nwin && radii[next] == d) upto[next++] = nrows;
            }
            /* vertical window sums of the squares, one pass: vs[i][k] = sum of the first upto[i] rows' squares */
#ifdef CF_VECTORS
            for (; k + 8 <= w; k += 8) {
                v8f sum = {0};
                for (int i = 0, q = 0; i < nwin; i++) {
                    for (; q < upto[i]; q++) {
                        const v8f x = load8(rows[q] + k);
                        sum += x * x;
                    }
                    store8(vs + (size_t)i * stride + R + k, sum);
                }
            }
#endif
            for (; k < w; k++) {
                float sum = 0.0f;
                for (int i = 0, q = 0; i < nwin; i++) {
                    for (; q < upto[i]; q++) sum += rows[q][k] * rows[q][k];
                    vs[(size_t)i * stride + R + k] = sum;
                }
            }
            /* horizontal sums, means, their minimum, the rule: one pass */
            k = 0;
#ifdef CF_VECTORS
            for (; k + 8 <= w; k += 8) {
                v8f local = {0};
                for (int i = 0; i < nwin; i++) {
                    const v8f mean = hsum8(vs + (size_t)i * stride + R + k, radii[i]) * inv_area[i];
                    local = i == 0 ? mean : min8(mean, local);
                }
                const v8f floor_ = {s2, s2, s2, s2, s2, s2, s2, s2};
                local = max8(local, floor_);
                const v8f gain = s2 / local;
                store8(y + k, mode ? load8(row + k) * gain : gain);
            }
#endif
        }
        for (; k < w; k++) {
            float local = 0.0f;
            for (int i = 0; i < nwin; i++) {
                const int q = radii[i];
                const float *v = vs + (size_t)i * stride + R + k;
                float hsum = v[0];
                for (int d = 1; d <= q; d++) hsum += v[-d] + v[d];
                const float mean = hsum * inv_area[i];
                local = (i == 0 || mean < local) ? mean : local;
            }
            const float gain = s2 / (local > s2 ? local : s2);
            y[k] = mode ? row[k] * gain : gain;
        }
    }
    free(zero);
    free(buf);
    return 0;
}

/*
 * The fingerprint's MLE sums, rows r0..r1-1: num += noise * weight, den += weight^2, in one pass (strides in
 * elements: noise may be a view of a padded array).
 */
CF_API CF_SIMD int cf_fold(const float *noise, long noise_stride, const float *weight, long weight_stride, float *num,
                          float *den, int w, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        const float *restrict n = noise + (size_t)r * noise_stride;
        const float *restrict g = weight + (size_t)r * weight_stride;
        float *restrict a = num + (size_t)r * w;
        float *restrict b = den + (size_t)r * w;
        for (int k = 0; k < w; k++) {
            a[k] += n[k] * g[k];
            b[k] += g[k] * g[k];
        }
    }
    return 0;
}

/*
 * The CFA zero-mean's removal of the means, rows r0..r1-1 of an h x w float32 array a (h, w even), in place:
 * a[y][x] = (a[y][x] - rows[y/2][y%2][x%2]) - cols[y%2][x], the two float32 subtractions in the order numpy's two
 * broadcast passes take (camforensics.core.residual.zero_mean_cfa): the same bits in one pass, at the speed of
 * memory (numpy's passes over the four lattices' views run inner loops of two elements).
 */
CF_API CF_SIMD int cf_cfa_centre(float *a, int w, const float *rows, const float *cols, int r0, int r1)
{
    if (w % 2) return -1;
    for (int y = r0; y < r1; y++) {
        float *restrict v = a + (size_t)y * w;
        const float *rp = rows + 4 * (size_t)(y / 2) + 2 * (y % 2); /* rows[y/2][y%2][0..1] */
        const float *restrict cp = cols + (size_t)(y % 2) * w;  /* cols[y%2][0..w-1] */
        const float r_even = rp[0], r_odd = rp[1];
        for (int x = 0; x < w; x += 2) {
            v[x] = (v[x] - r_even) - cp[x];
            v[x + 1] = (v[x + 1] - r_odd) - cp[x + 1];
        }
    }
    return 0;
}

/*
 * Grey intensities of rows r0..r1-1 of an 8-bit RGB image (strides in bytes: rows, pixels; the three samples of a
 * pixel consecutive): out = r * w0, then += g * w1, then += b * w2, each sample converted to float32 and each
 * product and sum rounded to float32, the order numpy's three passes take (camforensics.core.residual
 * grey_from_channels): the same bits in one pass, without the temporary array of the products.
 */
CF_API CF_SIMD int cf_grey_u8(const unsigned char *x, long row_stride, long pixel_stride, int w, float *out, int r0,
                              int r1, float w0, float w1, float w2)
{
    for (int r = r0; r < r1; r++) {
        const unsigned char *restrict p = x + (size_t)r * row_stride;
        float *restrict y = out + (size_t)r * w;
        if (pixel_stride == 3) {
            for (int k = 0; k < w; k++) {
                float g = (float)p[3 * k] * w0;
                g += (float)p[3 * k + 1] * w1;
                g += (float)p[3 * k + 2] * w2;
                y[k] = g;
            }
        } else {
            for (int k = 0; k < w; k++) {
                const unsigned char *q = p + (long)k * pixel_stride;
                float g = (float)q[0] * w0;
                g += (float)q[1] * w1;
                g += (float)q[2] * w2;
                y[k] = g;
            }
        }
    }
    return 0;
}

/*
 * One block of rows of PCE's cross-power, p = q * k (complex64 interleaved; q and k rows strided in complex
 * elements, p contiguous), with numpy's own rounding of a complex product (its SIMD loop: re = fma(ar, br, -(ai bi)),
 * im = fma(ar, bi, ai br)); with power (2 * cols doubles of scratch), power[c] = sum over the rows, in order, of
 * re^2 (in float64) + the same sum of im^2: numpy's einsum("ij,ij->j", dtype=float64) of the block's float32 view
 * summed in pairs. Bit for bit the numpy formulation (checked at first use and in tests/test_pce.py). Returns -1 where
 * the CPU lacks AVX2 and FMA (the caller then uses numpy).
 */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static void cross_power_avx2(const float *q, long q_stride, const float *k,
                                                                  long k_stride, float *p, double *power, long rows,
                                                                  long cols)
{
    if (power)
        for (long c = 0; c < 2 * cols; c++)
            power[c] = 0.0;
    for (long r = 0; r < rows; r++) {
        const float *qr = q + 2 * (size_t)r * q_stride, *kr = k + 2 * (size_t)r * k_stride;
        float *pr = p + 2 * (size_t)r * cols;
        long c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m256 a = _mm256_loadu_ps(qr + 2 * c), b = _mm256_loadu_ps(kr + 2 * c);
            __m256 a_re = _mm256_moveldup_ps(a), a_im = _mm256_movehdup_ps(a);
            __m256 t = _mm256_mul_ps(a_im, _mm256_permute_ps(b, 0xB1)); /* (ai bi, ai br) */
            __m256 v = _mm256_fmaddsub_ps(a_re, b, t);                   /* (ar br - ai bi, ar bi + ai br) */
            _mm256_storeu_ps(pr + 2 * c, v);
            if (power) {
                __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
                double *w = power + 2 * c;
                _mm256_storeu_pd(w, _mm256_fmadd_pd(lo, lo, _mm256_loadu_pd(w))); /* the square is exact in float64 */
                _mm256_storeu_pd(w + 4, _mm256_fmadd_pd(hi, hi, _mm256_loadu_pd(w + 4)));
            }
        }
        for (; c < cols; c++) {
            float ar = qr[2 * c], ai = qr[2 * c + 1], br = kr[2 * c], bi = kr[2 * c + 1];
            float re = fmaf(ar, br, -(ai * bi)), im = fmaf(ar, bi, ai * br);
            pr[2 * c] = re;
            pr[2 * c + 1] = im;
            if (power) {
                power[2 * c] += (double)re * (double)re;
                power[2 * c + 1] += (double)im * (double)im;
            }
        }
    }
    if (power)
        for (long c = 0; c < cols; c++)
            power[c] = power[2 * c] + power[2 * c + 1];
}
#endif

CF_API int cf_cross_power(const float *q, long q_stride, const float *k, long k_stride, float *p, double *power,
                          long rows, long cols)
{
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cross_power_avx2(q, q_stride, k, k_stride, p, power, rows, cols);
        return 0;
    }
#endif
    (void)q; (void)q_stride; (void)k; (void)k_stride; (void)p; (void)power; (void)rows; (void)cols;
    return -1;
}

static struct PyModuleDef kernels_module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "Native kernels of camforensics' classical engine (loaded with ctypes by camforensics.runtime.native).", -1, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&kernels_module); }
