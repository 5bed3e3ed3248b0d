/* error.c — per-thread error messages and the dtype table. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "array-impl.h"

static _Thread_local char last_error[1024];

const char *em_last_error(void) { return last_error; }

em_status em_fail(em_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return st;
}

const char *em_status_name(em_status s) {
  switch (s) {
    case EM_OK: return "ok";
    case EM_ERR_ARGUMENT: return "argument";
    case EM_ERR_OOM: return "oom";
    case EM_ERR_UNSUPPORTED: return "unsupported";
    case EM_ERR_RUNTIME: return "runtime";
  }
  return "unknown";
}

const char *em_shape_str(char *buf, size_t cap, int ndim,
                         const int64_t *shape) {
  size_t used = 0;
  buf[0] = '\0';
  used += (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? "," : "",
                             (long long)shape[i]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
  return buf;
}

/* ---- dtypes ---- */

static const struct {
  const char *name;
  int bits;
  char kind;
} dtype_info[EM_DTYPE_COUNT] = {
#define X(N, n, b, k) {#n, b, k},
    EM_DTYPES(X)
#undef X
};

static bool valid(em_dtype t) { return (unsigned)t < EM_DTYPE_COUNT; }

const char *em_dtype_name(em_dtype t) {
  return valid(t) ? dtype_info[t].name : "?";
}
bool em_dtype_from_name(const char *name, em_dtype *out) {
  for (int i = 0; i < EM_DTYPE_COUNT; i++)
    if (strcmp(name, dtype_info[i].name) == 0) {
      *out = (em_dtype)i;
      return true;
    }
  return false;
}
/* Sub-byte types take one byte each in memory (see EM_DTYPES). */
size_t em_dtype_size(em_dtype t) {
  return valid(t) ? ((size_t)dtype_info[t].bits + 7) / 8 : 0;
}
int em_dtype_bits(em_dtype t) { return valid(t) ? dtype_info[t].bits : 0; }
bool em_dtype_is_float(em_dtype t) {
  return valid(t) && dtype_info[t].kind == 'f';
}
bool em_dtype_is_complex(em_dtype t) {
  return valid(t) && dtype_info[t].kind == 'c';
}
bool em_dtype_is_int(em_dtype t) {
  return valid(t) && (dtype_info[t].kind == 'u' || dtype_info[t].kind == 's');
}
bool em_dtype_is_signed(em_dtype t) {
  return valid(t) && (dtype_info[t].kind == 's' || dtype_info[t].kind == 'f');
}

const char *em_op_name(em_op op) {
  static const char *names[] = {
#define X(n, k) #n,
      EM_OP_LIST(X)
#undef X
  };
  _Static_assert(sizeof names / sizeof names[0] == EM_OP_COUNT,
                 "op names out of sync with EM_OP_LIST");
  return (unsigned)op < EM_OP_COUNT ? names[op] : "?";
}

em_op_kind em_op_kind_of(em_op op) {
  static const em_op_kind kinds[] = {
#define X(n, k) EM_KIND_##k,
      EM_OP_LIST(X)
#undef X
  };
  return kinds[op];
}
