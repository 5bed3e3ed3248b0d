defmodule Emily.CompilerTest do
  @moduledoc """
  Emily.Compiler against its oracle, Emily.Backend in eager mode: the same
  defn functions called directly on Emily tensors (Nx.Defn's default
  Evaluator with Emily as the default backend) and jitted with
  Emily.Compiler give the same results, on Emily.Backend. Also Nx.Serving.
  """
  use ExUnit.Case, async: true
  import Nx.Defn

  defn affine_gelu(x, w, b) do
    y = Nx.dot(x, w) + b
    0.5 * y * (1 + Nx.erf(y / Nx.sqrt(2.0)))
  end

  defn normalize(x) do
    mean = Nx.mean(x, axes: [-1], keep_axes: true)
    var = Nx.variance(x, axes: [-1], keep_axes: true)
    (x - mean) * Nx.rsqrt(var + 1.0e-5)
  end

  defn control_flow(x, n) do
    {x, _, _} =
      while {x, n, i = 0}, i < n do
        {if(Nx.sum(x) > 0, do: x * 0.5, else: x + 1.0), n, i + 1}
      end

    x
  end

  defn tuple_out(x) do
    {Nx.sort(x, axis: 1), Nx.argmax(x, axis: 1), Nx.cumulative_sum(x, axis: 1)}
  end

  defn served(x), do: affine_gelu(x, Nx.iota({3, 5}) / 10, Nx.iota({5}) / 5 - 0.5)

  defn constants(x), do: x + Nx.tensor([1.0, 2.0, 3.0]) + Nx.iota({3}) + Nx.eye(3)

  defp emily(t), do: Nx.backend_copy(t, Emily.Backend)

  defp rand(shape, seed) do
    :rand.seed(:exsss, {seed, 1, 2})
    n = Tuple.product(shape)
    Nx.tensor(for(_ <- 1..n, do: :rand.uniform() * 4 - 2), type: :f32, backend: Nx.BinaryBackend)
    |> Nx.reshape(shape)
  end

  defp eager(fun, args) do
    Nx.with_default_backend(Emily.Backend, fn ->
      apply(Nx.Defn.jit(fun, compiler: Nx.Defn.Evaluator), args)
    end)
  end

  defp compiled(fun, args), do: apply(Nx.Defn.jit(fun, compiler: Emily.Compiler), args)

  defp assert_same(%Nx.Tensor{} = got, %Nx.Tensor{} = want) do
    assert %Emily.Backend{} = got.data
    assert %Emily.Backend{} = want.data
    assert got.shape == want.shape and got.type == want.type
    assert Nx.to_binary(got) == Nx.to_binary(want)
  end

  defp assert_same(got, want) when is_tuple(got) do
    Enum.zip(Tuple.to_list(got), Tuple.to_list(want)) |> Enum.each(fn {g, w} -> assert_same(g, w) end)
  end

  test "defn functions give the eager backend's results, on Emily.Backend" do
    x = emily(rand({4, 3}, 1))
    w = emily(rand({3, 5}, 2))
    b = emily(rand({5}, 3))

    cases = [
      {&affine_gelu/3, [x, w, b]},
      {&normalize/1, [x]},
      {&control_flow/2, [x, 3]},
      {&tuple_out/1, [x]},
      {&constants/1, [emily(rand({3, 3}, 4))]}
    ]

    for {fun, args} <- cases do
      assert_same(compiled(fun, args), eager(fun, args))
    end
  end

  test "inputs on another backend are accepted and results land on Emily" do
    x = rand({4, 3}, 5)
    got = compiled(&normalize/1, [x])
    assert %Emily.Backend{} = got.data
    assert_same(got, eager(&normalize/1, [emily(x)]))
  end

  test "Nx.Defn.compile with Emily.Compiler runs many times" do
    template = Nx.template({4, 3}, :f32)
    fun = Nx.Defn.compile(&normalize/1, [template], compiler: Emily.Compiler)

    for seed <- 1..3 do
      x = emily(rand({4, 3}, seed))
      assert_same(fun.(x), eager(&normalize/1, [x]))
    end
  end

  test "Nx.Serving with Emily.Compiler, batched" do
    serving =
      Nx.Serving.jit(&served/1, compiler: Emily.Compiler)
      |> Nx.Serving.batch_size(4)

    inputs = for seed <- 10..12, do: rand({2, 3}, seed)
    batch = Nx.Batch.concatenate(inputs)
    got = Nx.Serving.run(serving, batch)
    want = eager(&served/1, [emily(Nx.concatenate(inputs))])
    assert %Emily.Backend{} = got.data
    assert Nx.shape(got) == {6, 5}
    assert Nx.all_close(got, want, rtol: 1.0e-6) |> Nx.to_number() == 1
  end

  test "the compiler pins Emily as the default backend only during the call" do
    previous = Nx.default_backend()
    _ = compiled(&constants/1, [emily(rand({3, 3}, 4))])
    assert Nx.default_backend() == previous
  end
end
