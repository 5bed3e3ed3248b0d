defmodule Emily.TestGen do
  @moduledoc false
  # Generators and comparison for the differential suites (StreamData is
  # not available here). Inputs are built on Nx.BinaryBackend from a fixed
  # seed; `on/2` moves them to a backend, optionally through a view so that
  # Emily sees non-contiguous data.
  import ExUnit.Assertions

  # Nx 0.13 has no zero-size dimensions (the engine suite covers them).
  def shapes, do: [{}, {1}, {5}, {3, 4}, {2, 1, 3}, {2, 3, 4}]

  # Big enough for the engine's thread pool (BinaryBackend is the slow side).
  def big_shape, do: {160, 260}

  def broadcast_shapes,
    do: [
      {{}, {}},
      {{4}, {}},
      {{}, {3, 4}},
      {{3, 1}, {4}},
      {{2, 3, 4}, {2, 3, 4}},
      {{2, 1, 4}, {1, 3, 1}},
      {{1, 3}, {3}},
      {{160, 260}, {260}}
    ]

  def reduce_cases,
    do: [
      {{}, nil},
      {{5}, [0]},
      {{3, 4}, [1]},
      {{3, 4}, [0]},
      {{2, 3, 4}, [0, 2]},
      {{2, 3, 4}, [1]},
      {{2, 3, 4}, nil},
      {{2, 1, 3}, [1]},
      {{160, 260}, [0]},
      {{160, 260}, nil}
    ]

  # Each layout yields {:view, base, fun}: fun(base) on the target backend
  # has the original values, but on Emily is a strided view.
  def layouts do
    [
      fn x -> {:view, x, & &1} end,
      fn x ->
        r = Nx.rank(x)

        if r >= 2 do
          perm = Enum.reverse(0..(r - 1)) |> Enum.to_list()
          {:view, Nx.transpose(x, axes: perm), &Nx.transpose(&1, axes: perm)}
        else
          {:view, x, & &1}
        end
      end,
      fn x ->
        # every other element of a padded copy: a stride-2 slice
        r = Nx.rank(x)

        if r >= 1 and Nx.size(x) > 0 do
          cfg = for _ <- 1..r, do: {0, 1, 1}
          big = Nx.pad(x, 0, cfg)
          shape = Tuple.to_list(x.shape)
          {:view, big, &Nx.slice(&1, List.duplicate(0, r), shape, strides: List.duplicate(2, r))}
        else
          {:view, x, & &1}
        end
      end
    ]
  end

  # The Emily side runs on the device EMILY_TEST_DEVICE names ("cpu", the
  # default, "cuda" or "cuda:N"); the oracle is always Nx.BinaryBackend.
  def backend_of(:emily), do: {Emily.Backend, device: device()}
  def backend_of(:binary), do: Nx.BinaryBackend

  @doc "The device the Emily side of the suites runs on."
  def device, do: Application.get_env(:emily, :test_device, :cpu)

  @doc "Parses EMILY_TEST_DEVICE: nil, \"\" or \"cpu\" -> :cpu, \"cuda\" -> {:cuda, 0}, \"cuda:N\" -> {:cuda, N}."
  def parse_device(nil), do: :cpu
  def parse_device(""), do: :cpu
  def parse_device("cpu"), do: :cpu
  def parse_device("cuda"), do: {:cuda, 0}

  def parse_device("cuda:" <> n) do
    case Integer.parse(n) do
      {i, ""} when i >= 0 -> {:cuda, i}
      _ -> raise ArgumentError, "EMILY_TEST_DEVICE: bad CUDA index in #{inspect("cuda:" <> n)}"
    end
  end

  def parse_device(other),
    do: raise(ArgumentError, "EMILY_TEST_DEVICE must be cpu, cuda or cuda:N, got #{inspect(other)}")

  # Ops the device's backend has no kernel for fail with the engine's
  # :unsupported error, raised as an ArgumentError whose message reads like
  # these (engine/src/core/eval.c, engine/src/cuda). With
  # EMILY_TEST_UNSUPPORTED=record such a failure is recorded (op, types,
  # first message) and the comparison is skipped; the suite prints the
  # list at the end. Otherwise (the default) it fails the test.
  @unsupported ~r/not supported on|no CUDA kernel|no backend for device|has no algorithm for|too large for cuBLAS/

  @doc false
  def unsupported?(%ArgumentError{message: msg}), do: Regex.match?(@unsupported, msg)
  def unsupported?(_), do: false

  @doc "Runs fun (the Emily side of a check); records an unsupported op in record mode."
  def on_device(op, type, fun) do
    fun.()
  rescue
    e ->
      if Application.get_env(:emily, :test_unsupported) == :record and unsupported?(e) do
        record_unsupported(op, type, Exception.message(e))
        :unsupported
      else
        reraise e, __STACKTRACE__
      end
  end

  defp record_unsupported(op, type, msg) do
    :ets.insert_new(:emily_unsupported, {{op, type}, msg})
    :ets.update_counter(:emily_unsupported_count, :count, 1, {:count, 0})
  end

  @doc "Recorded unsupported ops: [{{op, type}, message}], sorted."
  def unsupported, do: :ets.tab2list(:emily_unsupported) |> Enum.sort()

  @doc "How many checks were skipped as unsupported."
  def unsupported_count do
    case :ets.lookup(:emily_unsupported_count, :count) do
      [{:count, n}] -> n
      [] -> 0
    end
  end

  def on({:view, base, fun}, b), do: base |> Nx.backend_copy(backend_of(b)) |> fun.()
  def on(%Nx.Tensor{} = t, b), do: Nx.backend_copy(t, backend_of(b))

  def gen(shape, type, domain) do
    :rand.seed(:exsss, {:erlang.phash2({shape, type, domain}), 7, 11})
    n = Tuple.product(shape)
    if n == 0 do
      Nx.broadcast(Nx.tensor(0, type: type, backend: Nx.BinaryBackend), shape)
    else
      values = for _ <- 1..n, do: value(type, domain)
      Nx.tensor(values, type: type, backend: Nx.BinaryBackend) |> Nx.reshape(shape)
    end
  end

  defp value({:c, _}, domain), do: Complex.new(value({:f, 64}, domain), value({:f, 64}, domain))
  defp value({t, _}, :bool) when t in [:u, :s], do: Enum.random(0..1)
  defp value({t, _}, :ties) when t in [:u, :s], do: Enum.random(0..3)
  defp value(_, :ties), do: Enum.random(0..3) * 1.0
  defp value({:u, _}, :shift), do: Enum.random(0..7)
  defp value({:s, _}, :shift), do: Enum.random(0..7)
  defp value({:u, _}, :nonzero), do: Enum.random(1..9)
  defp value({:s, _}, :nonzero), do: Enum.random([-7, -3, -1, 1, 2, 5, 9])
  defp value(_, :nonzero), do: Enum.random([-2.5, -1.0, 0.5, 1.5, 3.0])
  defp value({:u, _}, :cast), do: Enum.random(0..100)
  defp value({:s, _}, :cast), do: Enum.random(-100..100)
  defp value(_, :cast), do: Enum.random(0..1000) / 10
  defp value({:u, 8}, _), do: Enum.random(0..255)
  defp value({:u, _}, :small), do: Enum.random(0..5)
  defp value({:s, _}, :small), do: Enum.random(-5..5)
  defp value({:u, _}, _), do: Enum.random(0..1000)
  defp value({:s, 8}, _), do: Enum.random(-128..127)
  defp value({:s, _}, _), do: Enum.random(-1000..1000)
  defp value(_, :positive), do: 0.1 + :rand.uniform() * 4
  defp value(_, :unit), do: :rand.uniform() * 1.9 - 0.95
  defp value(_, :ge1), do: 1 + :rand.uniform() * 3
  defp value(_, :small), do: Float.round(:rand.uniform() * 4 - 2, 2)
  defp value(_, _), do: :rand.uniform() * 6 - 3

  def domain(op) when op in [:log, :log1p, :sqrt, :rsqrt], do: :positive
  def domain(op) when op in [:acos, :asin, :atanh, :erf_inv], do: :unit
  def domain(:acosh), do: :ge1
  def domain(op) when op in [:pow, :left_shift, :right_shift], do: :small
  def domain(_), do: :any

  def rhs_domain(op) when op in [:quotient, :remainder, :divide], do: :nonzero
  def rhs_domain(op) when op in [:left_shift, :right_shift], do: :shift
  def rhs_domain(:pow), do: :small
  def rhs_domain(_), do: :any

  @all_types [
    {:f, 32},
    {:f, 64},
    {:f, 16},
    {:bf, 16},
    {:s, 32},
    {:s, 64},
    {:u, 8},
    {:s, 8},
    {:u, 64},
    {:c, 64},
    {:c, 128}
  ]

  # Types Nx itself defines the op for: whatever BinaryBackend accepts.
  def unary_types(op) do
    Enum.filter(@all_types, fn t ->
      try do
        apply(Nx, op, [Nx.tensor([1], type: t, backend: Nx.BinaryBackend)])
        true
      rescue
        _ -> false
      end
    end)
  end

  def binary_types(op) do
    pairs = for t <- @all_types, do: {t, t}
    mixed = [{{:s, 32}, {:f, 32}}, {{:u, 8}, {:s, 8}}, {{:f, 16}, {:f, 64}}, {{:s, 64}, {:c, 64}}]

    Enum.filter(pairs ++ mixed, fn {a, b} ->
      try do
        apply(Nx, op, [Nx.tensor([1], type: a, backend: Nx.BinaryBackend), Nx.tensor([1], type: b, backend: Nx.BinaryBackend)])
        true
      rescue
        _ -> false
      end
    end)
  end

  # Where Nx.BinaryBackend is the wrong oracle. Each entry says why; the
  # engine follows C99/numpy/XLA there and its own suite checks the values.
  @known_differences %{
    # Nx's Complex library uses textbook formulas off the principal branch
    # (acos(z) = -i log(z + sqrt(z^2 - 1))); the engine returns principal
    # values like C's cacos, numpy, PyTorch and XLA.
    {:acos, {:c, 64}} => :branch_cut,
    {:acos, {:c, 128}} => :branch_cut,
    {:asin, {:c, 64}} => :branch_cut,
    {:asin, {:c, 128}} => :branch_cut,
    {:acosh, {:c, 64}} => :branch_cut,
    {:acosh, {:c, 128}} => :branch_cut,
    {:asinh, {:c, 64}} => :branch_cut,
    {:asinh, {:c, 128}} => :branch_cut,
    {:atanh, {:c, 64}} => :branch_cut,
    {:atanh, {:c, 128}} => :branch_cut,
    {:atan, {:c, 64}} => :branch_cut,
    {:atan, {:c, 128}} => :branch_cut,
    # BinaryBackend compares a Complex struct with 0 by term order and so
    # returns 1 for every complex input; the engine returns z/|z| like XLA.
    {:sign, {:c, 64}} => :binary_backend_bug,
    {:sign, {:c, 128}} => :binary_backend_bug,
    # Nx's Complex.pow(0, w) is 0 for every w != 0; for Re(w) <= 0 the
    # engine returns NaN, as XLA and C99's cpow do.
    {:pow, {{:s, 64}, {:c, 64}}} => :zero_base
  }

  # BinaryBackend's f64 erf_inv is a rational approximation good to ~1e-7
  # relative; the engine's is correctly rounded (scipy.special.erfinv agrees
  # with it to the last digit), so f64 erf_inv is compared at 1e-6.
  @loose %{{:erf_inv, {:f, 64}} => {1.0e-6, 1.0e-9}}

  @doc "Runs fun on both backends and compares shape, type and values."
  def compare(op, type, desc, fun) do
    if Map.has_key?(@known_differences, {op, type}) do
      :ok
    else
      do_compare(op, type, desc, fun, Map.get(@loose, {op, type}))
    end
  end

  @doc """
  Like compare/4 with an explicit {rtol, atol} (for results computed by a
  different algorithm, e.g. LAPACK against Nx's own defn decompositions).
  """
  def compare(op, type, desc, tol, fun), do: do_compare(op, type, desc, fun, tol)

  defp do_compare(op, type, desc, fun, tol) do
    want =
      try do
        {:ok, fun.(:binary)}
      rescue
        e -> {:skip, e}
      end

    case want do
      {:skip, _} ->
        :ok

      {:ok, want} ->
        # Ops that build fresh tensors (Nx.imag of a real, constants) use the
        # default backend: make it Emily for the Emily run.
        on_device(op, type, fn ->
          got = Nx.with_default_backend(backend_of(:emily), fn -> fun.(:emily) end)
          ctx = "#{op} #{inspect(type)} #{inspect(desc)}"
          Process.put(:emily_tol, tol)
          assert_same(got, want, ctx)
        end)
    end
  end

  def assert_same(%Nx.Tensor{} = got, %Nx.Tensor{} = want, ctx) do
    assert got.shape == want.shape, "#{ctx}: shape #{inspect(got.shape)} != #{inspect(want.shape)}"
    assert got.type == want.type, "#{ctx}: type #{inspect(got.type)} != #{inspect(want.type)}"
    assert match?(%Emily.Backend{}, got.data), "#{ctx}: result is not on Emily.Backend"
    assert got.data.device == device(), "#{ctx}: result is on #{inspect(got.data.device)}, not #{inspect(device())}"
    g = got |> Nx.backend_copy(Nx.BinaryBackend) |> Nx.to_flat_list()
    w = want |> Nx.to_flat_list()
    {rtol, atol} = Process.get(:emily_tol) || tol(want.type)

    Enum.zip(g, w)
    |> Enum.with_index()
    |> Enum.each(fn {{a, b}, i} ->
      assert close?(a, b, rtol, atol), "#{ctx}: element #{i}: got #{inspect(a)}, want #{inspect(b)}"
    end)
  end

  def assert_same(got, want, ctx) when is_tuple(got) and is_tuple(want) do
    Enum.zip(Tuple.to_list(got), Tuple.to_list(want)) |> Enum.each(fn {g, w} -> assert_same(g, w, ctx) end)
  end

  defp tol({:f, 16}), do: {2.0e-3, 1.0e-3}
  defp tol({:bf, 16}), do: {1.6e-2, 1.0e-2}
  defp tol({:f, 32}), do: {2.0e-5, 1.0e-6}
  defp tol({:c, 64}), do: {2.0e-5, 1.0e-6}
  defp tol({:f, 64}), do: {1.0e-12, 1.0e-14}
  defp tol({:c, 128}), do: {1.0e-12, 1.0e-14}
  defp tol(_), do: {0, 0}

  def close?(a, a, _, _), do: true
  def close?(%Complex{re: ar, im: ai}, %Complex{re: br, im: bi}, r, t), do: close?(ar, br, r, t) and close?(ai, bi, r, t)
  def close?(a, b, r, t) when is_number(a) and is_number(b), do: abs(a - b) <= t + r * abs(b)
  def close?(_, _, _, _), do: false
end
