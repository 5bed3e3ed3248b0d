"""Emily's C API through ctypes, for the benchmarks that call libemily.so
from Python next to a peer in the same process (interleave_cpu.py,
interleave_gpu.py): the device struct, the signatures they use, a status
check, and the report writer."""
import ctypes as C

BF16, F32 = 9, 10  # em_dtype codes (EM_DTYPES order in emily.h)


class Dev(C.Structure):
    _fields_ = [("type", C.c_int), ("index", C.c_int)]


def load(path):
    """libemily.so with argument and result types set; checks the dtype codes."""
    lib = C.CDLL(path)
    P = C.c_void_p
    pp = C.POINTER(P)
    lib.em_cpu.restype = Dev
    lib.em_dtype_name.restype = C.c_char_p
    lib.em_array_from_data.argtypes = [pp, C.c_int, C.c_int, C.POINTER(C.c_int64),
                                       C.c_void_p, C.c_size_t, Dev]
    lib.em_matmul.argtypes = [pp, P, P]
    lib.em_layer_norm.argtypes = [pp, P, P, P, C.c_double]
    lib.em_rms_norm.argtypes = [pp, P, P, C.c_double]
    lib.em_softmax.argtypes = [pp, P, C.c_int]
    lib.em_sum.argtypes = [pp, P, C.c_int, C.POINTER(C.c_int), C.c_bool]
    lib.em_copy.argtypes = [pp, P]
    lib.em_eval.argtypes = [pp, C.c_int]
    lib.em_array_data.argtypes = [P]
    lib.em_array_data.restype = C.c_void_p
    lib.em_array_release.argtypes = [P]
    lib.em_last_error.restype = C.c_char_p
    assert lib.em_dtype_name(F32) == b"f32" and lib.em_dtype_name(BF16) == b"bf16"
    return lib


def checker(lib):
    """A function that raises with Emily's message on a failed status."""
    def check(st):
        if st != 0:
            raise RuntimeError(lib.em_last_error().decode())
    return check


def write_report(lines, out=None):
    """Prints the report's lines and writes them to `out` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text)
