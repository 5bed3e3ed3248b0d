/* unary-math.h — CPU kernels of the transcendental unary ops (exp ... erf_inv)
 * for f16 bf16 f32 f64 c64 c128; unary.c's dispatcher asks here first. */
#ifndef EMILY_CPU_UNARY_MATH_H
#define EMILY_CPU_UNARY_MATH_H

#include "cpu-kernels.h"

/* The kernel of op on dtype t (output dtype t), or NULL when op is not one
 * of exp expm1 log log1p sigmoid cos sin tan cosh sinh tanh acos asin atan
 * acosh asinh atanh erf erfc erf_inv, t is not a float/complex dtype, or op
 * is erf/erfc/erf_inv on complex (Nx rejects those). */
em_unary_kernel em_cpu_unary_math_kernel(em_op op, em_dtype t);

#endif
