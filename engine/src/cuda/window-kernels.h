/* window-kernels.h — the launchers of window.cu (window_reduce and
 * window_scatter), callable from C (window.c). Pointers are device
 * pointers already offset to element 0; strides are in elements and may be
 * negative. Each launcher returns the launch's cudaError_t. */
#ifndef EMILY_CUDA_WINDOW_KERNELS_H
#define EMILY_CUDA_WINDOW_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types, in the engine's dtype order (u8 ... c128). */
enum {
  EM_CU_WT_U8, EM_CU_WT_U16, EM_CU_WT_U32, EM_CU_WT_U64,
  EM_CU_WT_S8, EM_CU_WT_S16, EM_CU_WT_S32, EM_CU_WT_S64,
  EM_CU_WT_F16, EM_CU_WT_BF16, EM_CU_WT_F32, EM_CU_WT_F64,
  EM_CU_WT_C64, EM_CU_WT_C128
};
/* Reductions. */
enum { EM_CU_WOP_SUM, EM_CU_WOP_PROD, EM_CU_WOP_MAX, EM_CU_WOP_MIN };

/* A window over nd axes (after merging untouched runs). Axis a: n input
 * positions, o windows (outputs), window k, stride s, dilation d, low
 * padding lo; win: whether the window touches it at all (else k = s = 1,
 * lo = 0 and o = n: window position = input position). xst: strides of the
 * operand; fst: row-major strides of the operand's shape (flat positions);
 * sst: strides of the source (window_scatter); mst: row-major strides of
 * the window grid (flat window numbers). Axes are row-major, last fastest;
 * nw: how many have win set. */
typedef struct {
  int nd, nw;
  int win[16];
  int64_t n[16], o[16], k[16], s[16], d[16], lo[16];
  int64_t xst[16], fst[16], sst[16], mst[16];
} em_cu_wgeom;

/* y (contiguous, nout elements of type t) = the op over each window of x;
 * empty: x has no elements (every output is the identity). */
cudaError_t em_cu_window_reduce_launch(const em_cu_wgeom *g, int t, int op,
                                       const void *x, void *y, int64_t nout,
                                       int empty, int sms, cudaStream_t s);

/* Phase 1: picks[m] = flat position (row-major in x's shape) chosen by
 * window m (ns windows), or -1 for a window wholly in the padding; max
 * takes ties late (>=), min likewise (<=). */
cudaError_t em_cu_window_select_launch(const em_cu_wgeom *g, int t, int max,
                                       const void *x, int64_t *picks,
                                       int64_t ns, int sms, cudaStream_t s);
/* Phase 2: y (contiguous, na elements of type ts, x's shape) = *init plus
 * the source values of the windows that picked each position, added in
 * window order. */
cudaError_t em_cu_window_scatter_launch(const em_cu_wgeom *g, int ts,
                                        const void *src, const void *init,
                                        const int64_t *picks, void *y,
                                        int64_t na, int sms, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
