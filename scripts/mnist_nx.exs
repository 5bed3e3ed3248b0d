# Trains a 784-128-10 MLP on the demo's digits through Nx on Emily.Backend,
# with the training step compiled by Emily.Compiler. Run by scripts/demo.sh
# when Nx is available:  mix run scripts/mnist_nx.exs DIGITS_FILE [EPOCHS] [MIN_ACC]
defmodule MnistNx do
  import Nx.Defn

  def load(path) do
    <<"EMDG", n::little-32, rows::little-32, cols::little-32, rest::binary>> = File.read!(path)
    px = rows * cols
    <<pixels::binary-size(n * px), labels::binary-size(n)>> = rest
    x = Nx.from_binary(pixels, :u8) |> Nx.reshape({n, px}) |> Nx.divide(255.0)
    y = Nx.from_binary(labels, :u8)
    # The same fixed shuffle and 80/20 split for every run.
    perm = Nx.argsort(Nx.Random.uniform(Nx.Random.key(42), shape: {n}) |> elem(0))
    {Nx.take(x, perm), Nx.take(y, perm), px}
  end

  def init(px) do
    key = Nx.Random.key(0)
    {w1, key} = Nx.Random.normal(key, 0.0, :math.sqrt(2.0 / px), shape: {px, 128})
    {w2, _} = Nx.Random.normal(key, 0.0, :math.sqrt(2.0 / 128), shape: {128, 10})
    %{w1: w1, b1: Nx.broadcast(0.0, {128}), w2: w2, b2: Nx.broadcast(0.0, {10})}
  end

  defn predict(p, x) do
    h = Nx.max(Nx.dot(x, p.w1) + p.b1, 0)
    Nx.dot(h, p.w2) + p.b2
  end

  defn loss(p, x, y) do
    logits = predict(p, x)
    lse = Nx.log(Nx.sum(Nx.exp(logits - Nx.reduce_max(logits, axes: [1], keep_axes: true)), axes: [1])) +
            Nx.reduce_max(logits, axes: [1])
    onehot = Nx.equal(Nx.new_axis(y, 1), Nx.iota({1, 10}))
    Nx.mean(lse - Nx.sum(logits * onehot, axes: [1]))
  end

  defn step(p, x, y, lr) do
    {l, g} = value_and_grad(p, &loss(&1, x, y))
    {%{w1: p.w1 - lr * g.w1, b1: p.b1 - lr * g.b1, w2: p.w2 - lr * g.w2, b2: p.b2 - lr * g.b2}, l}
  end

  defn accuracy(p, x, y), do: Nx.mean(Nx.equal(Nx.argmax(predict(p, x), axis: 1), y))
end

[path | rest] = System.argv()
epochs = String.to_integer(Enum.at(rest, 0, "10"))
min_acc = String.to_float(Enum.at(rest, 1, "0.9"))

Nx.global_default_backend(Emily.Backend)
Nx.Defn.global_default_options(compiler: Emily.Compiler)

{x, y, px} = MnistNx.load(path)
n = elem(x.shape, 0)
ntrain = div(n * 8, 10)
{xtr, xte} = {x[0..(ntrain - 1)], x[ntrain..-1//1]}
{ytr, yte} = {y[0..(ntrain - 1)], y[ntrain..-1//1]}
batch = 100
step = Nx.Defn.jit(&MnistNx.step/4)
t0 = System.monotonic_time(:millisecond)

params =
  Enum.reduce(1..epochs, MnistNx.init(px), fn epoch, p ->
    {p, losses} =
      Enum.reduce(0..(div(ntrain, batch) - 1), {p, []}, fn b, {p, ls} ->
        {p, l} = step.(p, xtr[(b * batch)..(b * batch + batch - 1)], ytr[(b * batch)..(b * batch + batch - 1)], 0.1)
        {p, [l | ls]}
      end)

    mean_loss = losses |> Nx.stack() |> Nx.mean() |> Nx.to_number()
    acc = MnistNx.accuracy(p, xtr, ytr) |> Nx.to_number()
    IO.puts("epoch #{epoch}: loss #{Float.round(mean_loss, 4)}, train accuracy #{Float.round(acc * 100, 2)}% (#{System.monotonic_time(:millisecond) - t0} ms)")
    p
  end)

acc = MnistNx.accuracy(params, xte, yte) |> Nx.to_number()
IO.puts("Nx on Emily.Backend: test accuracy #{Float.round(acc * 100, 2)}% on #{n - ntrain} digits")
stats = Emily.Memory.stats()
IO.puts("engine memory: peak #{div(stats.peak, 1024)} KiB")
if acc < min_acc, do: System.halt(1)
