defmodule Emily.GradTest do
  @moduledoc """
  Gradients of a zoo of models, computed with `Nx.Defn.grad` under
  `Emily.Compiler`, against the same gradients from `Nx.Defn.Evaluator` on
  `Nx.BinaryBackend` (f32, relative tolerance ~1e-4).
  """
  use ExUnit.Case, async: true
  import Nx.Defn

  @rtol 1.0e-4
  @atol 1.0e-5

  ## The zoo

  # MLP: tanh hidden layer, softmax cross-entropy
  defn mlp_loss({w1, b1, w2, b2}, x, y) do
    h = Nx.tanh(Nx.dot(x, w1) + b1)
    logits = Nx.dot(h, w2) + b2
    softmax_cross_entropy(logits, y)
  end

  defn mlp_grad(params, x, y), do: grad(params, &mlp_loss(&1, x, y))

  defnp softmax_cross_entropy(logits, y) do
    log_p = logits - Nx.logsumexp(logits, axes: [-1], keep_axes: true)
    -Nx.mean(Nx.sum(y * log_p, axes: [-1]))
  end

  # conv -> relu -> 2x2 max-pool (window_max) -> dense -> softmax CE
  defn conv_loss({k, kb, w, b}, x, y) do
    c = Nx.conv(x, k, padding: :same) + Nx.reshape(kb, {1, 3, 1, 1})
    c = Nx.max(c, 0)
    p = Nx.window_max(c, {1, 1, 2, 2}, strides: [1, 1, 2, 2])
    flat = Nx.reshape(p, {Nx.axis_size(x, 0), :auto})
    softmax_cross_entropy(Nx.dot(flat, w) + b, y)
  end

  defn conv_grad(params, x, y), do: grad(params, &conv_loss(&1, x, y))

  # scaled dot-product attention with an output projection
  defn attention_loss({wq, wk, wv}, x, target) do
    q = Nx.dot(x, wq)
    k = Nx.dot(x, wk)
    v = Nx.dot(x, wv)
    d = Nx.axis_size(q, -1)
    scores = Nx.dot(q, [2], [0], k, [2], [0]) / Nx.sqrt(d)
    weights = softmax(scores)
    out = Nx.dot(weights, [2], [0], v, [1], [0])
    Nx.mean((out - target) ** 2)
  end

  defn attention_grad(params, x, target), do: grad(params, &attention_loss(&1, x, target))

  defnp softmax(x) do
    e = Nx.exp(x - stop_grad(Nx.reduce_max(x, axes: [-1], keep_axes: true)))
    e / Nx.sum(e, axes: [-1], keep_axes: true)
  end

  # softmax and logsumexp on their own
  defn softmax_lse_loss(x, c) do
    Nx.sum(softmax(x) * c) + Nx.sum(Nx.logsumexp(x, axes: [1])) + Nx.sum(Nx.logsumexp(x * 0.5, axes: [0]))
  end

  defn softmax_lse_grad(x, c), do: grad(x, &softmax_lse_loss(&1, c))

  # take, gather, slice and put_slice
  defn indexing_loss({x, u}, idx, gidx, c) do
    a = Nx.take(x, idx, axis: 0)
    g = Nx.gather(x, gidx)
    s = Nx.slice(x, [1, 2], [3, 2])
    p = Nx.put_slice(x, [2, 1], u)
    Nx.sum(a * a) + Nx.sum(Nx.sin(g)) + Nx.sum(s * 3.0) + Nx.sum(p * c) +
      Nx.sum(Nx.take_along_axis(x, Nx.argsort(x, axis: 1), axis: 1) * c)
  end

  defn indexing_grad(params, idx, gidx, c), do: grad(params, &indexing_loss(&1, idx, gidx, c))

  # a while loop: a few steps of a recurrent cell
  defn rnn_loss({w, u}, x) do
    h = Nx.broadcast(0.0, {Nx.axis_size(x, 1), Nx.axis_size(w, 1)})

    {h, _, _, _, _} =
      while {h, x, w, u, i = 0}, i < Nx.axis_size(x, 0) do
        xi = Nx.squeeze(Nx.slice_along_axis(x, i, 1, axis: 0), axes: [0])
        {Nx.tanh(Nx.dot(xi, w) + Nx.dot(h, u)), x, w, u, i + 1}
      end

    Nx.sum(h * h)
  end

  defn rnn_grad(params, x), do: grad(params, &rnn_loss(&1, x))

  ## Tests

  test "MLP with softmax cross-entropy" do
    params = {rand({5, 16}), rand({16}), rand({16, 4}), rand({4})}
    check(&mlp_grad/3, [params, rand({8, 5}), one_hot(8, 4)])
  end

  test "small conv net: conv, relu, window_max pooling, dense" do
    params = {rand({3, 1, 3, 3}), rand({3}), rand({3 * 4 * 4, 3}), rand({3})}
    check(&conv_grad/3, [params, rand({2, 1, 8, 8}), one_hot(2, 3)])
  end

  test "scaled dot-product attention" do
    params = {rand({6, 8}), rand({6, 8}), rand({6, 8})}
    check(&attention_grad/3, [params, rand({2, 5, 6}), rand({2, 5, 8})])
  end

  test "softmax and logsumexp" do
    check(&softmax_lse_grad/2, [rand({4, 7}), rand({4, 7})])
  end

  test "indexing: take, gather, slice, put_slice, take_along_axis" do
    idx = Nx.tensor([0, 3, 3, 1], backend: Nx.BinaryBackend)
    gidx = Nx.tensor([[0, 0], [4, 3], [0, 0], [2, 1]], backend: Nx.BinaryBackend)
    check(&indexing_grad/4, [{rand({5, 4}), rand({2, 2})}, idx, gidx, rand({5, 4})])
  end

  test "a while loop (recurrent cell)" do
    check(&rnn_grad/2, [{rand({3, 4}), rand({4, 4})}, rand({5, 2, 3})])
  end

  test "gradients come back on Emily.Backend" do
    gx = Nx.Defn.jit(&softmax_lse_grad/2, compiler: Emily.Compiler).(on_emily(rand({2, 3})), on_emily(rand({2, 3})))
    assert %Emily.Backend{} = gx.data
  end

  ## Helpers

  defp check(fun, args) do
    want =
      Nx.with_default_backend(Nx.BinaryBackend, fn ->
        apply(Nx.Defn.jit(fun, compiler: Nx.Defn.Evaluator), Enum.map(args, &on_binary/1))
      end)

    got = apply(Nx.Defn.jit(fun, compiler: Emily.Compiler), Enum.map(args, &on_emily/1))
    assert_close(got, want)
  end

  defp assert_close(%Nx.Tensor{} = got, %Nx.Tensor{} = want) do
    assert %Emily.Backend{} = got.data
    assert got.shape == want.shape and got.type == want.type
    g = Nx.backend_copy(got, Nx.BinaryBackend)

    assert Nx.all_close(g, want, rtol: @rtol, atol: @atol) |> Nx.to_number() == 1,
           "gradients differ:\n#{inspect(g)}\n#{inspect(want)}"
  end

  defp assert_close(got, want) when is_tuple(got) do
    Enum.zip(Tuple.to_list(got), Tuple.to_list(want)) |> Enum.each(fn {g, w} -> assert_close(g, w) end)
  end

  defp rand(shape) do
    :rand.seed(:exsss, {:erlang.phash2(shape), 17, 4})
    n = Tuple.product(shape)
    Nx.tensor(for(_ <- 1..n, do: :rand.uniform() * 2 - 1), type: :f32, backend: Nx.BinaryBackend)
    |> Nx.reshape(shape)
  end

  defp one_hot(n, k) do
    labels = Nx.tensor(for(i <- 0..(n - 1), do: rem(i * 7, k)), backend: Nx.BinaryBackend)
    Nx.equal(Nx.new_axis(labels, 1), Nx.iota({1, k}, backend: Nx.BinaryBackend)) |> Nx.as_type(:f32)
  end

  defp on_binary(t), do: to(t, Nx.BinaryBackend)
  defp on_emily(t), do: to(t, Emily.Backend)

  defp to(%Nx.Tensor{} = t, b), do: Nx.backend_copy(t, b)
  defp to(tuple, b) when is_tuple(tuple), do: tuple |> Tuple.to_list() |> Enum.map(&to(&1, b)) |> List.to_tuple()
end
