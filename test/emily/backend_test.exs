defmodule Emily.BackendTest do
  @moduledoc """
  Emily.Backend against Nx.BinaryBackend: every callback on randomized
  shapes, types and values (scalars, zero-size, broadcasting, and
  non-contiguous inputs made by transposing and slicing first).
  """
  use ExUnit.Case, async: true
  import Emily.TestGen

  @float_types [{:f, 32}, {:f, 64}, {:f, 16}, {:bf, 16}]
  @int_types [{:u, 8}, {:s, 32}, {:s, 64}, {:u, 64}, {:s, 8}, {:u, 16}]
  @complex_types [{:c, 64}, {:c, 128}]

  setup do
    Emily.FallbackCounter.reset()
    :ok
  end

  describe "elementwise unary" do
    for op <- Emily.Ops.unary() -- [:logical_not] do
      test "#{op}" do
        op = unquote(op)

        types = unary_types(op)

        cases =
          for(type <- types, shape <- shapes(), layout <- layouts(), do: {type, shape, layout}) ++
            [{hd(types), big_shape(), hd(layouts())}]

        for {type, shape, layout} <- cases do
          input = gen(shape, type, domain(op)) |> layout.()
          compare(op, type, shape, fn backend -> apply(Nx, op, [on(input, backend)]) end)
        end
      end
    end
  end

  describe "elementwise binary" do
    for op <- Emily.Ops.binary() do
      test "#{op}" do
        op = unquote(op)

        for {ta, tb} <- binary_types(op), {sa, sb} <- broadcast_shapes(), layout <- layouts(),
            Tuple.product(sa) < 1000 or ta == {:f, 32} or ta == {:s, 32} do
          a = gen(sa, ta, domain(op)) |> layout.()
          b = gen(sb, tb, rhs_domain(op)) |> layout.()
          compare(op, {ta, tb}, {sa, sb}, fn backend -> apply(Nx, op, [on(a, backend), on(b, backend)]) end)
        end
      end
    end
  end

  describe "reductions" do
    for op <- [:sum, :product, :reduce_max, :reduce_min, :all, :any] do
      test "#{op}" do
        op = unquote(op)

        for type <- [{:f, 32}, {:s, 32}, {:u, 8}, {:f, 64}, {:bf, 16}],
            {shape, axes} <- reduce_cases(),
            keep <- [false, true],
            layout <- layouts(),
            Tuple.product(shape) < 1000 or type == {:f, 32} do
          x = gen(shape, type, :small) |> layout.()
          opts = [axes: axes, keep_axes: keep]
          compare(op, type, {shape, opts}, fn b -> apply(Nx, op, [on(x, b), opts]) end)
        end
      end
    end

    for op <- [:argmax, :argmin] do
      test "#{op}" do
        op = unquote(op)

        for type <- [{:f, 32}, {:s, 32}, {:u, 8}],
            {shape, axis} <- [{{5}, nil}, {{3, 4}, 0}, {{3, 4}, 1}, {{2, 3, 4}, 2}, {{2, 3, 4}, nil}],
            tie <- [:low, :high],
            keep <- [false, true] do
          # small integer values make ties common
          x = gen(shape, type, :ties)
          opts = [axis: axis, tie_break: tie, keep_axis: keep]
          compare(op, type, {shape, opts}, fn b -> apply(Nx, op, [on(x, b), opts]) end)
        end
      end
    end
  end

  describe "shape and data movement" do
    test "reshape, squeeze, transpose, broadcast, reverse" do
      for type <- [{:f, 32}, {:s, 64}, {:c, 64}, {:u, 8}], layout <- layouts() do
        x = gen({2, 1, 3, 4}, type, :any) |> layout.()
        compare(:reshape, type, {}, fn b -> Nx.reshape(on(x, b), {4, 6}) end)
        compare(:squeeze, type, {}, fn b -> Nx.squeeze(on(x, b)) end)
        compare(:transpose, type, {}, fn b -> Nx.transpose(on(x, b), axes: [3, 0, 2, 1]) end)
        compare(:broadcast, type, {}, fn b -> Nx.broadcast(on(x, b), {5, 2, 2, 3, 4}) end)
        compare(:reverse, type, {}, fn b -> Nx.reverse(on(x, b), axes: [0, 3]) end)
      end
    end

    test "pad with negative and interior padding" do
      x = gen({3, 4}, {:f, 32}, :any)

      for config <- [[{1, 2, 0}, {0, 1, 1}], [{-1, 0, 2}, {2, -2, 0}], [{0, 0, 0}, {-4, 1, 1}]] do
        compare(:pad, {:f, 32}, config, fn b -> Nx.pad(on(x, b), 9.5, config) end)
      end
    end

    test "slice, put_slice (static and tensor starts), concatenate, stack, select, clip" do
      for type <- [{:f, 32}, {:s, 32}, {:bf, 16}] do
        x = gen({5, 6}, type, :any)
        u = gen({2, 3}, type, :any)
        compare(:slice, type, {}, fn b -> Nx.slice(on(x, b), [1, 2], [3, 4], strides: [2, 3]) end)
        compare(:slice, type, :clamped, fn b -> Nx.slice(on(x, b), [4, 5], [3, 4]) end)

        compare(:slice_dynamic, type, {}, fn b ->
          Nx.slice(on(x, b), [Nx.tensor(3, backend: backend_of(b)), Nx.tensor(-1, backend: backend_of(b))], [2, 2])
        end)

        compare(:put_slice, type, {}, fn b -> Nx.put_slice(on(x, b), [4, 1], on(u, b)) end)

        compare(:put_slice, type, :dynamic, fn b ->
          Nx.put_slice(on(x, b), [Nx.tensor(1, backend: backend_of(b)), 2], on(u, b))
        end)

        compare(:concatenate, type, {}, fn b -> Nx.concatenate([on(x, b), on(x, b)], axis: 1) end)
        compare(:stack, type, {}, fn b -> Nx.stack([on(x, b), on(x, b)], axis: 1) end)
        p = gen({5, 6}, {:u, 8}, :bool)
        compare(:select, type, {}, fn b -> Nx.select(on(p, b), on(x, b), on(Nx.negate(x), b)) end)
        compare(:clip, type, {}, fn b -> Nx.clip(on(x, b), -1, 2) end)
      end
    end

    test "as_type across families and bitcast" do
      for from <- @float_types ++ @int_types, to <- @float_types ++ @int_types ++ @complex_types do
        x = gen({7}, from, :cast)
        compare(:as_type, {from, to}, {}, fn b -> Nx.as_type(on(x, b), to) end)
      end

      x = gen({6}, {:f, 32}, :any)
      compare(:bitcast, {:f, 32}, {}, fn b -> Nx.bitcast(on(x, b), {:s, 32}) end)
    end

    test "creation: iota, eye, constants, from_binary" do
      for type <- [{:f, 32}, {:s, 64}, {:u, 8}, {:bf, 16}] do
        compare(:iota, type, {}, fn b -> Nx.iota({3, 4}, type: type, axis: 1, backend: backend_of(b)) end)
        compare(:iota, type, nil, fn b -> Nx.iota({3, 4}, type: type, backend: backend_of(b)) end)
        compare(:eye, type, {}, fn b -> Nx.eye({2, 3, 4}, type: type, backend: backend_of(b)) end)
        compare(:constant, type, {}, fn b -> Nx.broadcast(Nx.tensor(3, type: type, backend: backend_of(b)), {2, 2}) end)
      end
    end

    test "dot with contracting and batch axes" do
      for type <- [{:f, 32}, {:f, 64}, {:s, 32}, {:c, 64}, {:bf, 16}, {:u, 8}] do
        a = gen({2, 3, 4}, type, :small)
        b = gen({2, 4, 5}, type, :small)
        compare(:dot, type, :batched, fn bk -> Nx.dot(on(a, bk), [2], [0], on(b, bk), [1], [0]) end)
        c = gen({4, 3}, type, :small)
        compare(:dot, type, :transposed, fn bk -> Nx.dot(on(a, bk), [1], on(c, bk), [1]) end)
        v = gen({4}, type, :small)
        compare(:dot, type, :vector, fn bk -> Nx.dot(on(a, bk), on(v, bk)) end)
      end
    end

    test "to_batched with both leftover modes" do
      x = gen({7, 2}, {:f, 32}, :any)

      for leftover <- [:repeat, :discard] do
        got = x |> on(:emily) |> Nx.to_batched(3, leftover: leftover) |> Enum.map(&Nx.to_binary/1)
        want = x |> Nx.to_batched(3, leftover: leftover) |> Enum.map(&Nx.to_binary/1)
        assert got == want
      end
    end
  end

  test "inspect shows the backend and the device when enabled" do
    Application.put_env(:emily, :inspect_backend, true)

    try do
      assert inspect(Nx.tensor([1, 2], backend: Emily.Backend)) =~ "Emily.Backend<cpu>"
    after
      Application.put_env(:emily, :inspect_backend, false)
    end
  end

  test "to_binary is zero-copy and outlives deallocation" do
    t = Nx.tensor([1.0, 2.0, 3.0], backend: Emily.Backend) |> Nx.multiply(2)
    bin = Nx.to_binary(t)
    assert :ok == Nx.backend_deallocate(t)
    assert :already_deallocated == Nx.backend_deallocate(t)
    :erlang.garbage_collect()
    assert bin == <<2.0::float-32-native, 4.0::float-32-native, 6.0::float-32-native>>
    assert_raise ArgumentError, ~r/deallocated/, fn -> Nx.add(t, 1) end
  end

  test "bad input raises ArgumentError naming the op" do
    t = Nx.tensor([1.0, 2.0], backend: Emily.Backend)
    assert_raise ArgumentError, ~r/\[from_data\]|\[from_binary\]/, fn ->
      Emily.Backend.from_binary(Nx.template({3}, {:f, 32}), <<1, 2>>, [])
    end

    assert_raise ArgumentError, ~r/device/, fn -> Nx.backend_copy(t, {Emily.Backend, device: {:cuda, 42}}) end
  end

  test "many processes computing at once get the right answers" do
    tasks =
      for k <- 1..24 do
        Task.async(fn ->
          x = Nx.iota({1000}, type: :f32, backend: Emily.Backend)
          Nx.sum(Nx.multiply(x, k)) |> Nx.to_number()
        end)
      end

    results = Task.await_many(tasks, 60_000)
    assert results == for(k <- 1..24, do: k * 499_500.0)
  end

  test "memory statistics" do
    stats = Emily.Memory.stats()
    assert is_integer(stats.active) and is_integer(stats.peak) and is_integer(stats.cached)
    _ = Nx.iota({100_000}, backend: Emily.Backend) |> Nx.add(1) |> Nx.to_binary()
    assert Emily.Memory.stats().peak >= 400_000
    Emily.Memory.reset_peak()
    Emily.Memory.clear_cache()
    assert Emily.Memory.stats().cached == 0
  end
end
