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
  # digits in the last place (different, equally valid, rounding).
  @rounding []

  # Not about a backend.
  @unrelated [default_backend: 1]

  doctest Nx, except: @rounding ++ @unrelated ++ [:moduledoc]
end
