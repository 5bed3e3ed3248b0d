defmodule Emily.Ops do
  @moduledoc false
  # The engine's elementwise and reduction op lists (engine/include/emily.h:
  # EM_BINARY_OPS, EM_UNARY_OPS, EM_REDUCE_OPS), kept free of the NIF so
  # other modules can use them at compile time. A parity test compares them
  # with the NIF's own list.

  def binary,
    do: ~w(add subtract multiply divide pow remainder atan2 min max quotient
      bitwise_and bitwise_or bitwise_xor left_shift right_shift equal not_equal
      greater less greater_equal less_equal logical_and logical_or logical_xor)a

  def unary,
    do: ~w(exp expm1 log log1p sigmoid cos sin tan cosh sinh tanh acos asin
      atan acosh asinh atanh sqrt rsqrt cbrt erf erfc erf_inv abs bitwise_not ceil
      conjugate floor negate round sign count_leading_zeros population_count real
      imag is_nan is_infinity logical_not)a

  def reduce, do: ~w(sum product reduce_max reduce_min all any)a
end
