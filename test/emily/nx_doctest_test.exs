defmodule Emily.NxDoctestTest do
  @moduledoc """
  Nx's own doctests, run with Emily.Backend as the default backend (as
  Torchx and EXLA do). Each exclusion names its reason.
  """
  use ExUnit.Case, async: true

  setup do
    Nx.default_backend(Emily.Backend)
    :ok
  end

  # The engine is correct here, but differs from BinaryBackend's printed
  # digits in the last places (different, equally valid, rounding).
  @rounding [
    # f64: BinaryBackend's erf_inv is a rational approximation good to ~1e-7
    # relative (it prints 0.08885598780483887 for erf_inv(0.1)); the
    # engine's is correctly rounded (0.08885599049425769, as
    # scipy.special.erfinv gives).
    erf_inv: 1,
    # f64 log1p(2.0): the engine calls C's log1p (glibc, like Python's
    # math.log1p) and prints 1.0986122886681096; BinaryBackend computes
    # :math.log(1 + x), here the correctly rounded ln 3 ...098: 1 ulp.
    log1p: 1
  ]

  # Not about a backend.
  @unrelated [default_backend: 1]

  doctest Nx, except: @rounding ++ @unrelated ++ [:moduledoc]
end
