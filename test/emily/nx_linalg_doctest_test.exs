defmodule Emily.NxLinAlgDoctestTest.Examples do
  @moduledoc false
  # The `iex>` examples of a module's function docs, cut the way
  # ExUnit.DocTest cuts them: an example (one doctest) starts at an `iex>`
  # line and runs to the next blank line; inside it, `iex>` / `...>` lines
  # are code and the lines after them the expected result. Each example
  # gets its function, its ordinal among that function's examples (1-based)
  # and the source line of its first `iex>` (the `:doctest_line` tag
  # ExUnit gives the same doctest).

  def examples(module) do
    {:docs_v1, _, _, _, _, _, docs} = Code.fetch_docs(module)

    for {{kind, name, arity}, anno, _, %{"en" => doc}, _} <- Enum.sort(docs),
        kind in [:function, :macro],
        {example, n} <- Enum.with_index(doc_examples(doc, :erl_anno.line(anno) + 1), 1) do
      Map.merge(example, %{fun: name, arity: arity, n: n})
    end
  end

  defp doc_examples(doc, first_line) do
    doc
    |> String.split(["\r\n", "\n"])
    |> Enum.with_index(first_line)
    |> take_examples([])
  end

  defp take_examples(lines, acc) do
    case Enum.drop_while(lines, fn {l, _} ->
           not String.starts_with?(String.trim_leading(l), "iex>")
         end) do
      [] ->
        Enum.reverse(acc)

      [{first, line} | _] = rest ->
        indent = byte_size(first) - byte_size(String.trim_leading(first))

        {body, rest} =
          Enum.split_while(rest, fn {l, _} ->
            s = strip(l, indent)
            s != "" and not String.starts_with?(s, ["```", "~~~"])
          end)

        steps = body |> Enum.map(fn {l, _} -> strip(l, indent) end) |> steps([], [], [])
        take_examples(rest, [%{line: line, steps: steps} | acc])
    end
  end

  defp strip(l, indent) when byte_size(l) > indent,
    do: binary_part(l, indent, byte_size(l) - indent)

  defp strip(_l, _indent), do: ""

  # Steps: {code, expected text or nil}. Consecutive `iex>` lines with no
  # expected text between them are one piece of code, as in ExUnit.
  defp steps([], [], [], acc), do: Enum.reverse(acc)
  defp steps([], code, exp, acc), do: Enum.reverse([step(code, exp) | acc])

  defp steps(["iex>" <> s | rest], code, [_ | _] = exp, acc),
    do: steps(rest, [s], [], [step(code, exp) | acc])

  defp steps(["iex>" <> s | rest], code, [], acc), do: steps(rest, code ++ [s], [], acc)
  defp steps(["...>" <> s | rest], code, [], acc), do: steps(rest, code ++ [s], [], acc)
  defp steps([l | rest], code, exp, acc), do: steps(rest, code, exp ++ [l], acc)

  defp step(code, []), do: {Enum.join(code, "\n"), nil}
  defp step(code, exp), do: {Enum.join(code, "\n"), Enum.join(exp, "\n")}
end

defmodule Emily.NxLinAlgDoctestTest do
  @moduledoc """
  Nx.LinAlg's doctests, run with Emily.Backend as the default backend.

  The engine does linear algebra with OpenBLAS/LAPACK (trsm, getrf, potrf,
  syevd, gesdd, geqrf); Nx's printed results come from its own defn
  implementations (lib/nx/lin_alg/*.ex) on Nx.BinaryBackend. Some results
  differ from the printed ones in their last digits, or, where the answer
  is not unique, by a convention. Those examples are listed below, each
  with its reason, and are checked here instead of as strings:

    * `@rounding`: every printed number, within `tolerance/1`, under the
      exact printed type/shape header (vectorized axes and names too);
    * `@invariant`: the property that defines the answer, for examples
      whose printed result is one of several valid ones or is itself off,
      plus every printed number that does not depend on the convention;
    * `@raises_on_read`: an error case whose error the engine raises when
      the result is read, not when the op is called (tensors are lazy).

  Every other example runs as an ordinary doctest. Every test also asserts
  that nothing fell back to Nx.BinaryBackend.
  """
  use ExUnit.Case, async: true

  alias __MODULE__.Examples

  # Examples are named {function, arity, n}: the n-th example (1-based) in
  # the function's docs (Nx 0.13.1; the doctest of the same example is
  # named "doctest Nx.LinAlg.<fun>/<arity> (<index in the module>)").

  # The two answers agree to a few ulp, but the printed digits differ.
  # Where the exact answer is known, the engine prints it for solve #1,
  # matrix_power #4, determinant #5-#7 and lu #3; for triangular_solve
  # #1/#4 it is Nx that prints the correctly rounded quotients (OpenBLAS's
  # trsm is 1-2 ulp off).
  @rounding %{
    # potrf: l21 = 3/sqrt(2) is 2.1213202 correctly rounded (engine), Nx
    # prints 2.1213205; l22 = sqrt(0.5) = 0.70710677 comes out 0.7071071
    # (engine) and 0.7071065 (Nx), 5-6 ulp either way (cancellation in
    # 5 - l21^2).
    {:cholesky, 1, 2} => "potrf rounding: 2.1213202 vs 2.1213205, 0.7071071 vs 0.7071065",
    {:cholesky, 1, 5} => "as cholesky/1 example 2, vectorized",
    # exact [4/3, -2/3, 8/3, -4/3]: engine -0.66666675 vs -0.6666667 etc.
    {:triangular_solve, 3, 1} => "trsm rounding: 1-2 ulp",
    {:triangular_solve, 3, 4} => "trsm rounding: 1-2 ulp",
    {:triangular_solve, 3, 11} => "batched trsm rounding: -1.6666667 vs -1.6666666",
    # getrf/getrs vs Nx's LU and two triangular solves.
    {:solve, 2, 1} => "getrs rounding: 3.0 vs 3.0000002",
    {:solve, 2, 4} => "batched getrs rounding: 1-2 ulp",
    # pinv(a).b, pinv from gesdd vs Nx's QDWH SVD; exact answers [1, 0],
    # [1, -0.95] and [-1/18, 1/9, 5/18].
    {:least_squares, 3, 1} => "rounding: [1.0000002, 1.1920929e-7] vs [1.0000005, -2.3841858e-7]",
    {:least_squares, 3, 2} => "rounding: [1.0000002, -0.95] vs [1.0000001, -0.95000035]",
    {:least_squares, 3, 3} => "rounding: 1e-7 absolute on entries of 0.06-0.28",
    # inverse of [[1, 2], [3, 4]] is [[-2, 1], [1.5, -0.5]]: engine exact.
    {:matrix_power, 2, 4} => "inverse rounding: -2.0 vs -2.0000002",
    # inverse cubed of [[4, 5], [6, 7]] (condition number 65) is exactly
    # [[-110.375, 76.875], [92.25, -64.25]]: both sides are 2.7e-6 off it
    # (the inverse's rounding, cubed), the same way, and agree to 1.4e-7.
    {:matrix_power, 2, 6} =>
      "inverse-cubed rounding: -110.374695 vs -110.37471 (1.4e-7 relative)",
    # from getrf's diagonal: the engine prints the exact 48.0 and 630.0.
    {:determinant, 1, 5} => "LU determinant rounding: 48.0 vs 47.999996",
    {:determinant, 1, 6} => "LU determinant rounding: 48.0 vs 47.999996",
    {:determinant, 1, 7} => "LU determinant rounding: 630.0 vs 630.00006",
    # Same pivots (P exact), L and U equal as printed; P.L.U gives the
    # exact 4.0 and 1.0 where Nx prints 3.9999998 and 0.9999999.
    {:lu, 1, 3} => "P.L.U rounding: 4.0 vs 3.9999998",
    {:pinv, 2, 6} => "SVD rounding: 1.0 vs 0.99999994",
    # Same eigenvectors with the same signs: 0.8280673 vs 0.8280672.
    {:eigh, 2, 3} => "syevd rounding: 1 ulp",
    {:eigh, 2, 4} => "as eigh/2 example 3, vectorized",
    # Same singular vectors with the same signs; the engine's u has -0.0
    # where Nx prints 0.0 (equal as numbers), and 1.0 for 0.99999994.
    {:svd, 2, 1} => "-0.0 vs 0.0 in u",
    {:svd, 2, 2} => "-0.0 vs 0.0 in u; 1.0 vs 0.99999994",
    {:svd, 2, 3} => "-0.0 vs 0.0 in u"
  }

  # The printed answer is one of several valid ones, or is itself off:
  # invariant/3 below checks what defines the answer (see each clause).
  @invariant %{
    # eigenvalues 5, -1, -1: the eigenspace of -1 is a plane and any
    # orthonormal basis of it is right; syevd picks another one than Nx
    # ([0.707, -0.707, 0] and [0.577, 0.577, -0.577] for Nx's
    # [-0.183, 0.913, -0.365] and [0.894, 0, -0.447]).
    {:eigh, 2, 2} => "repeated eigenvalue: eigenvector basis not unique",
    # QR is unique only up to the signs of R's diagonal (and Q's columns);
    # geqrf gives R[2][2] = -1.4142135 and Q's last column negated, where Nx
    # prints +1.4142137.
    {:qr, 2, 4} => "QR sign convention: last column of Q and row of R negated",
    # A = [[1, 1], [3, 4]] has determinant 1, so pinv(A) = inv(A) =
    # [[4, -1], [-3, 1]] exactly. Nx prints [[4.0000577, -1.0000169],
    # [-3.000044, 1.000013]], up to 1.7e-5 relative off (Nx's QDWH SVD);
    # the engine's is within 3e-7 relative of the exact answer, and is
    # checked against it.
    {:pinv, 2, 5} => "printed answer off by 1.7e-5: checked against the exact inverse"
  }

  # The engine raises the same error, when the result is read.
  @raises_on_read %{
    # Ops are lazy: triangular_solve returns a tensor, and the engine's
    # ArgumentError "[triangular_solve] can't solve for singular matrix
    # (batch entry 0)" comes when it is evaluated (Nx.to_binary, inspect).
    {:triangular_solve, 3, 15} => "singular matrix: error raised on read (lazy evaluation)"
  }

  @examples Examples.examples(Nx.LinAlg)
  @source to_string(Nx.LinAlg.module_info(:compile)[:source])
  @excluded Map.keys(@rounding) ++ Map.keys(@invariant) ++ Map.keys(@raises_on_read)

  for key <- @excluded, not Enum.any?(@examples, &({&1.fun, &1.arity, &1.n} == key)) do
    raise "#{inspect(key)} is not an example of Nx.LinAlg (did Nx's docs change?)"
  end

  @excluded_lines for e <- @examples, {e.fun, e.arity, e.n} in @excluded, do: e.line

  setup_all do
    :telemetry.attach(
      {__MODULE__, :fallbacks},
      [:emily, :fallback, :start],
      &__MODULE__.record_fallback/4,
      nil
    )

    on_exit(fn -> :telemetry.detach({__MODULE__, :fallbacks}) end)
  end

  setup do
    Nx.default_backend(Emily.Backend)
    # Telemetry handlers run in the process that emits the event: fallbacks
    # of this test are recorded in its process dictionary.
    Process.put(:emily_linalg_fallbacks, [])
    :ok
  end

  @doc false
  def record_fallback(_event, _measurements, %{op: op}, _config) do
    case Process.get(:emily_linalg_fallbacks) do
      nil -> :ok
      ops -> Process.put(:emily_linalg_fallbacks, [op | ops])
    end
  end

  @doc false
  def assert_no_fallback! do
    assert Process.get(:emily_linalg_fallbacks) == [], "ops fell back to Nx.BinaryBackend"
  end

  ## The doctests, but for the examples listed above
  #
  # `doctest Nx.LinAlg, except: [...]` can only leave out whole functions,
  # and most functions here have both kinds of examples; so this is the
  # `doctest` macro's own expansion (ExUnit 1.18: ExUnit.DocTest.__file__/1
  # and __doctests__/2 are internal), leaving out examples by their
  # `:doctest_line` tag and asserting no fallback at the end of each.

  unless function_exported?(ExUnit.DocTest, :__doctests__, 2) and
           function_exported?(ExUnit.DocTest, :__file__, 1) do
    raise "ExUnit.DocTest.__doctests__/2 is gone: update this expansion of `doctest`"
  end

  doctest_file = ExUnit.DocTest.__file__(Nx.LinAlg)
  doctests = ExUnit.DocTest.__doctests__(Nx.LinAlg, [])

  if Enum.count(doctests, fn {_, _, tags} -> tags[:doctest_line] in @excluded_lines end) !=
       length(@excluded) do
    raise "could not match the excluded examples to Nx.LinAlg's doctests"
  end

  for {name, test, tags} <- doctests, tags[:doctest_line] not in @excluded_lines do
    @file doctest_file
    doc = ExUnit.Case.register_test(__MODULE__, __ENV__.file, __ENV__.line, :doctest, name, tags)

    def unquote(doc)(_) do
      unquote(test)
      Emily.NxLinAlgDoctestTest.assert_no_fallback!()
    end
  end

  ## The listed examples

  for e <- @examples, key = {e.fun, e.arity, e.n}, key in @excluded do
    {kind, reason} =
      cond do
        r = @rounding[key] -> {:rounding, r}
        r = @invariant[key] -> {:invariant, r}
        r = @raises_on_read[key] -> {:raises_on_read, r}
      end

    @example e
    test "#{kind}: Nx.LinAlg.#{e.fun}/#{e.arity} example #{e.n} (#{reason})" do
      check(unquote(kind), @example)
      assert_no_fallback!()
    end
  end

  # The checker itself, on the printed forms that the examples above do not
  # all use (NaN, Inf, -0.0, complex, names, vectorized axes, tuples).
  test "the printed-tensor checker reads Nx's forms and rejects differences" do
    f = Nx.tensor([[1.0, -0.0, :nan], [:infinity, :neg_infinity, 2.5e-8]])

    c =
      Nx.tensor(
        [Complex.new(1.0, -2.0), Complex.new(:infinity, :nan), Complex.new(-0.0, :neg_infinity)] ++
          [Complex.new(1.0e-8, 3.0e10)]
      )

    named = Nx.tensor([1, 2], names: [:x])
    vectorized = Nx.tensor([[3.0, 4.0], [5.0, 6.0]], type: :f64) |> Nx.vectorize(:v)

    for t <- [f, c, named, vectorized], do: assert_close(t, inspect(t))
    assert_close({named, vectorized}, inspect({named, vectorized}))
    assert_close(Nx.tensor(0.0), "#Nx.Tensor<\n  f32\n  -0.0\n>")

    # beyond the tolerance, wrong header, NaN vs a number, Inf's sign,
    # integers off by one, a tuple element
    for {actual, printed} <- [
          {Nx.tensor([1.0, 2.0]), "#Nx.Tensor<\n  f32[2]\n  [1.0, 2.0000043]\n>"},
          {Nx.tensor([1.0, 2.0]), "#Nx.Tensor<\n  f64[2]\n  [1.0, 2.0]\n>"},
          {Nx.tensor([1.0, 2.0]), "#Nx.Tensor<\n  f32[1][2]\n  [\n    [1.0, 2.0]\n  ]\n>"},
          {Nx.tensor([1.0, :nan]), "#Nx.Tensor<\n  f32[2]\n  [1.0, 2.0]\n>"},
          {Nx.tensor([1.0, :infinity]), "#Nx.Tensor<\n  f32[2]\n  [1.0, -Inf]\n>"},
          {Nx.tensor([1, 2]), "#Nx.Tensor<\n  s32[2]\n  [1, 3]\n>"},
          {Nx.tensor([Complex.new(1.0, 2.0)]), "#Nx.Tensor<\n  c64[1]\n  [1.0-2.0i]\n>"},
          {vectorized, inspect(Nx.devectorize(vectorized))},
          {{named, named}, inspect({named, Nx.tensor([1, 3], names: [:x])})}
        ] do
      assert_raise ExUnit.AssertionError, fn -> assert_close(actual, printed) end
    end
  end

  test "a fallback fails the no-fallback check" do
    # a function that only works on scalars makes reduce fall back (on
    # purpose: not counted in the suite's total)
    scalar_only = fn a, c -> Nx.add(Nx.reshape(a, {}), c) end
    Nx.iota({2, 3}) |> Nx.reduce(0, [axes: [1]], scalar_only) |> Nx.to_binary()
    Emily.FallbackCounter.uncount(:reduce)

    assert_raise ExUnit.AssertionError, &assert_no_fallback!/0
    Process.put(:emily_linalg_fallbacks, [])
  end

  ## Tolerances
  #
  #   |actual - expected| <= atol + rtol * |expected|
  #
  # for each real number (real and imaginary parts alike); NaN and the
  # infinities must match as they are, integers exactly. The two sides
  # solve the same small (n <= 5) problems with backward-stable algorithms
  # (or the same one, rounding in another order), and differ by a few ulp
  # of the answer's scale (1 in most examples, 100 for matrix_power #6:
  # hence the relative term). The bound is about 8 ulp at that scale:
  # 1.0e-6 for f32 (eps 1.19e-7). The largest error against a printed
  # number uses 0.37 of it (cholesky's l22, where both sides are 5-6 ulp
  # off, in opposite directions), the largest invariant residual 0.54
  # (pinv example 5's X.A - (X.A)^T). Tighter fails: 1.0e-7 fails 10 of
  # these tests, 3.0e-7 4, 5.0e-7 1 (that residual). f64 gets the same
  # 8 ulp (eps 2.2e-16); no f64 example is inexact today (the f64 ones
  # pass as strings).
  # EMILY_LINALG_TOL_REPORT=1 prints how much of the bound each entry uses.
  @doc false
  def tolerance({:f, 32}), do: {1.0e-6, 1.0e-6}
  def tolerance({:c, 64}), do: {1.0e-6, 1.0e-6}
  def tolerance({:f, 64}), do: {2.0e-15, 2.0e-15}
  def tolerance({:c, 128}), do: {2.0e-15, 2.0e-15}
  def tolerance({kind, _}) when kind in [:s, :u], do: {0, 0}

  ## Checks

  defp check(:rounding, example) do
    run(example, fn _step, actual, expected -> assert_close(actual, expected) end)
  end

  defp check(:invariant, example) do
    {binding, values} =
      run(example, fn step, actual, expected ->
        unless step in convention_steps(example), do: assert_close(actual, expected)
      end)

    invariant({example.fun, example.arity, example.n}, binding, values)
  end

  defp check(:raises_on_read, %{steps: [{code, "** (" <> error}]} = example) do
    [module, message] = :binary.split(error, ")")
    module = Module.concat([module])
    message = String.trim(message)
    {result, _} = Code.eval_string(code, [], file: @source, line: example.line)

    error = assert_raise module, fn -> Nx.to_binary(result) end
    assert Exception.message(error) =~ message
  end

  # Evaluates the example's code step by step; on each expected result calls
  # on_expected.(step index, value, expected text). Returns the final
  # binding and the value of each step (by index).
  defp run(example, on_expected) do
    example.steps
    |> Enum.with_index(1)
    |> Enum.reduce({[], %{}}, fn {{code, expected}, i}, {binding, values} ->
      {value, binding} = Code.eval_string(code, binding, file: @source, line: example.line)
      if expected, do: on_expected.(i, value, expected)
      {binding, Map.put(values, i, value)}
    end)
  end

  # Steps whose printed value depends on the convention: not compared
  # number by number (invariant/3 checks them).
  defp convention_steps(%{fun: :eigh, n: 2}), do: [2]
  defp convention_steps(%{fun: :qr, n: 4}), do: [1, 2]
  defp convention_steps(%{fun: :pinv, n: 5}), do: [1]

  # eigh of A = [[0, 1, 2], [1, 0, 2], [2, 2, 3]] (the example's input):
  # eigenvalues 5, -1, -1
  # (compared as printed, rounded). Checks A.V = V.diag(w), V^T.V = I, and
  # that the eigenvector of the simple eigenvalue 5 (column 0, unique up to
  # sign) is the printed one.
  defp invariant({:eigh, 2, 2}, binding, _values) do
    {w, v} = {binding[:eigenvals], binding[:eigenvecs]}
    a = Nx.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 3]], type: :f32)
    assert_all_close(Nx.dot(a, v), Nx.multiply(v, w), "A.V = V.diag(w)")
    assert_all_close(Nx.dot(Nx.transpose(v), v), Nx.eye(3, type: :f32), "V^T.V = I")

    assert_close(
      Nx.multiply(v[[.., 0]], Nx.sign(v[[0, 0]])),
      "#Nx.Tensor<\n  f32[3]\n  [0.40824828, 0.40824834, 0.81649655]\n>"
    )
  end

  # qr of t (4x3, reduced): Q.R = t, Q^T.Q = I, R upper triangular, and
  # (Q, R) is the printed (Q0, R0) up to the sign convention: Q = Q0.D,
  # R = D.R0 with D = diag(+-1) taken from R's diagonal.
  defp invariant({:qr, 2, 4}, binding, _values) do
    {t, q, r} = {binding[:t], binding[:q], binding[:r]}
    assert_all_close(Nx.dot(q, r), t, "Q.R = t")
    assert_all_close(Nx.dot(Nx.transpose(q), q), Nx.eye(3, type: :f32), "Q^T.Q = I")
    below_diagonal = Nx.greater(Nx.iota({3, 3}, axis: 0), Nx.iota({3, 3}, axis: 1))

    assert Nx.to_number(Nx.all(Nx.equal(Nx.select(below_diagonal, r, 0), 0))) == 1,
           "R upper triangular"

    [{_, q_expected}, {_, r_expected}] = Enum.take(example(:qr, 2, 4).steps, -2)
    d = Nx.sign(Nx.take_diagonal(r))
    assert_close(Nx.multiply(q, d), q_expected)
    assert_close(Nx.multiply(r, Nx.new_axis(d, 1)), r_expected)
  end

  # pinv of the invertible A = [[1, 1], [3, 4]] (det 1) is inv(A) =
  # [[4, -1], [-3, 1]]: X compared with that, and the four Moore-Penrose
  # conditions.
  defp invariant({:pinv, 2, 5}, _binding, %{1 => x}) do
    a = Nx.tensor([[1, 1], [3, 4]], type: :f32)
    assert_close(x, "#Nx.Tensor<\n  f32[2][2]\n  [\n    [4.0, -1.0],\n    [-3.0, 1.0]\n  ]\n>")
    assert_all_close(a |> Nx.dot(x) |> Nx.dot(a), a, "A.X.A = A")
    assert_all_close(x |> Nx.dot(a) |> Nx.dot(x), x, "X.A.X = X")
    ax = Nx.dot(a, x)
    xa = Nx.dot(x, a)
    assert_all_close(ax, Nx.transpose(ax), "A.X symmetric")
    assert_all_close(xa, Nx.transpose(xa), "X.A symmetric")
  end

  defp example(fun, arity, n),
    do: Enum.find(@examples, &({&1.fun, &1.arity, &1.n} == {fun, arity, n}))

  # Elementwise closeness of two tensors computed here (same tolerance).
  defp assert_all_close(actual, expected, what) do
    {atol, rtol} = tolerance(Nx.type(actual))
    diff = Nx.abs(Nx.subtract(actual, expected))
    bound = Nx.add(atol, Nx.multiply(rtol, Nx.abs(expected)))

    assert Nx.to_number(Nx.all(Nx.less_equal(diff, bound))) == 1,
           "#{what}: #{inspect(actual)} vs #{inspect(expected)}"
  end

  ## Comparing a value with its printed form

  # A tensor, or a tuple of tensors, against the printed text.
  @doc false
  def assert_close(actual, expected) when is_tuple(actual) do
    expected = String.trim(expected)
    assert String.starts_with?(expected, "{") and String.ends_with?(expected, "}")
    parts = Regex.scan(~r/#Nx\.Tensor<.*?\n\s*>/s, expected) |> Enum.map(&hd/1)
    assert length(parts) == tuple_size(actual), "expected #{length(parts)} elements: #{expected}"
    actual |> Tuple.to_list() |> Enum.zip(parts) |> Enum.each(fn {a, e} -> assert_close(a, e) end)
  end

  def assert_close(%Nx.Tensor{} = actual, expected) do
    {expected_header, expected_values} = parse_tensor(expected)
    {actual_header, _} = parse_tensor(inspect(actual, limit: :infinity))
    assert actual_header == expected_header

    actual_values = actual |> Nx.devectorize() |> Nx.to_flat_list()
    assert length(actual_values) == length(expected_values)
    {atol, rtol} = tolerance(Nx.type(actual))

    actual_values
    |> Enum.zip(expected_values)
    |> Enum.with_index()
    |> Enum.each(fn {{a, e}, i} ->
      report(Nx.type(actual), a, e)

      assert close?(a, e, atol, rtol),
             "entry #{i}: got #{inspect(a)}, expected #{inspect(e)} " <>
               "(atol #{atol}, rtol #{rtol})\ngot: #{inspect(actual)}\nexpected:\n#{expected}"
    end)
  end

  def assert_close(actual, expected) do
    {expected, _} = Code.eval_string(expected)
    assert actual === expected
  end

  defp close?(%Complex{re: ar, im: ai}, %Complex{re: er, im: ei}, atol, rtol),
    do: close?(ar, er, atol, rtol) and close?(ai, ei, atol, rtol)

  defp close?(a, e, atol, rtol) when is_number(a) and is_number(e),
    do: abs(a - e) <= atol + rtol * abs(e)

  # :nan, :infinity, :neg_infinity must match as they are.
  defp close?(a, e, _atol, _rtol), do: a == e

  # EMILY_LINALG_TOL_REPORT=1 prints, per entry, how much of the bound the
  # error uses (for choosing the tolerance).
  defp report(type, %Complex{re: ar, im: ai}, %Complex{re: er, im: ei}) do
    report(type, ar, er)
    report(type, ai, ei)
  end

  defp report(type, a, e) when is_number(a) and is_number(e) do
    {atol, rtol} = tolerance(type)
    bound = atol + rtol * abs(e)

    if System.get_env("EMILY_LINALG_TOL_REPORT") && bound > 0 do
      IO.puts("#{abs(a - e) / bound} of the bound: got #{inspect(a)}, expected #{inspect(e)}")
    end
  end

  defp report(_type, _a, _e), do: :ok

  # "#Nx.Tensor<\n  vectorized[x: 2]\n  f32[2][2]\n  [...]\n>" into the
  # header lines (vectorized axes, type and shape) and the flat values.
  @doc false
  def parse_tensor(text) do
    ["#Nx.Tensor<" | lines] =
      text |> String.trim() |> String.split("\n") |> Enum.map(&String.trim/1)

    {lines, [">"]} = Enum.split(lines, -1)

    {header, body} =
      Enum.split_while(lines, fn l ->
        Regex.match?(~r/^vectorized(\[[^\[\]]*\])+$/, l) or
          Regex.match?(~r/^[a-z]+\d+(\[[^\[\]]*\])*$/, l)
      end)

    values =
      Regex.scan(~r/[^\[\],\s]+/, Enum.join(body, " "))
      |> Enum.map(fn [token] -> parse_number(token) end)

    {header, values}
  end

  # "1.0", "-2", "NaN", "-Inf", "2.5e-8", "1.0-0.0i", "Inf+NaNi", "1e-8+3e10i"
  @doc false
  def parse_number(token) do
    complex =
      ~r/^(-?(?:Inf|NaN|\d+(?:\.\d+)?(?:e[+-]?\d+)?))([+-])(Inf|NaN|\d+(?:\.\d+)?(?:e[+-]?\d+)?)i$/

    case Regex.run(complex, token) do
      [_, re, sign, im] -> Complex.new(parse_real(re), parse_real(sign <> im))
      nil -> parse_real(token)
    end
  end

  defp parse_real("NaN"), do: :nan
  defp parse_real("-NaN"), do: :nan
  defp parse_real("+" <> x), do: parse_real(x)
  defp parse_real("Inf"), do: :infinity
  defp parse_real("-Inf"), do: :neg_infinity

  # Integers, and floats as Nx prints them ("2.5e-8", and "1e-8" inside
  # complex numbers).
  defp parse_real(x) do
    case Integer.parse(x) do
      {i, ""} ->
        i

      _ ->
        {f, ""} = Float.parse(x)
        f
    end
  end
end
