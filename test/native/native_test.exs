# The NIF layer's own suite: runs on plain `elixir` (Debian's 1.14 is
# enough), without Mix or Nx, so CI always exercises it.
#   EMILY_NIF_PATH=build/emily_nif elixir test/native/native_test.exs
Code.require_file("../../lib/emily/ops.ex", __DIR__)
Code.require_file("../../lib/emily/native.ex", __DIR__)
ExUnit.start(seed: 0)

defmodule Emily.NativeTest do
  use ExUnit.Case, async: false
  alias Emily.Native, as: N

  defp f32(list), do: for(x <- list, into: <<>>, do: <<x::float-32-native>>)
  defp s32(list), do: for(x <- list, into: <<>>, do: <<x::signed-32-native>>)
  defp ok!({:ok, v}), do: v
  defp read_f32(ref), do: for(<<x::float-32-native <- ok!(N.read(ref))>>, do: x)
  defp read_s32(ref), do: for(<<x::signed-32-native <- ok!(N.read(ref))>>, do: x)
  defp read_s64(ref), do: for(<<x::signed-64-native <- ok!(N.read(ref))>>, do: x)

  test "the NIF exports exactly the functions the Elixir side declares" do
    exported = N.op_names() |> Enum.sort()
    declared = N.nifs() |> Enum.sort()
    assert exported == declared
  end

  test "round trip and info" do
    a = ok!(N.from_binary(f32([1.5, -2.0, 3.25, 0.0]), :f32, {2, 2}, :cpu))
    assert N.info(a) == {:ok, {2, 2}, :f32, :cpu}
    assert read_f32(a) == [1.5, -2.0, 3.25, 0.0]
    assert ok!(N.to_binary(a, 2)) == f32([1.5, -2.0])
  end

  test "hand-computed elementwise, reductions and dot" do
    a = ok!(N.from_binary(f32([1.0, 2.0, 3.0, 4.0]), :f32, {2, 2}, :cpu))
    b = ok!(N.from_binary(f32([10.0, 20.0]), :f32, {2}, :cpu))
    assert read_f32(ok!(N.add(a, b))) == [11.0, 22.0, 13.0, 24.0]
    assert read_f32(ok!(N.multiply(a, a))) == [1.0, 4.0, 9.0, 16.0]
    assert read_f32(ok!(N.sum(a, [1], false))) == [3.0, 7.0]
    assert read_f32(ok!(N.sum(a, nil, false))) == [10.0]
    assert read_f32(ok!(N.reduce_max(a, [0], true))) == [3.0, 4.0]
    # [[1,2],[3,4]] . [[1,2],[3,4]] = [[7,10],[15,22]]
    assert read_f32(ok!(N.dot(a, [1], [], a, [0], []))) == [7.0, 10.0, 15.0, 22.0]
    assert read_s64(ok!(N.argmax(a, 1, false, false))) == [1, 1]
    [e] = read_f32(ok!(N.exp(ok!(N.from_binary(f32([1.0]), :f32, {}, :cpu)))))
    assert abs(e - :math.exp(1)) < 1.0e-6
  end

  test "integer semantics: wrap-around and truncating quotient" do
    a = ok!(N.from_binary(s32([2_147_483_647, -7, 7]), :s32, {3}, :cpu))
    one = ok!(N.from_binary(s32([1, 2, -2]), :s32, {3}, :cpu))
    assert read_s32(ok!(N.add(a, one))) == [-2_147_483_648, -5, 5]
    assert read_s32(ok!(N.quotient(a, one))) == [2_147_483_647, -3, -3]
    assert read_s32(ok!(N.remainder(a, one))) == [0, -1, 1]
  end

  test "shape ops: transpose, slice, pad, concatenate, iota" do
    a = ok!(N.iota(:s32, {2, 3}, 1, :cpu))
    assert read_s32(a) == [0, 1, 2, 0, 1, 2]
    t = ok!(N.transpose(ok!(N.iota(:s32, {2, 3}, 0, :cpu)), [1, 0]))
    assert N.info(t) == {:ok, {3, 2}, :s32, :cpu}
    assert read_s32(t) == [0, 1, 0, 1, 0, 1]
    s = ok!(N.slice(a, [0, 1], [2, 2], [1, 1]))
    assert read_s32(s) == [1, 2, 1, 2]
    z = ok!(N.full(<<9::signed-32-native>>, :s32, {}, :cpu))
    p = ok!(N.pad(ok!(N.iota(:s32, {2}, 0, :cpu)), z, [1], [-1], [1]))
    assert read_s32(p) == [9, 0, 9]
    c = ok!(N.concatenate([a, a], 0))
    assert N.info(c) == {:ok, {4, 3}, :s32, :cpu}
  end

  test "indexing: gather, take, take_along_axis, indexed_add/put" do
    # [[0, 1, 2], [3, 4, 5]]
    a = ok!(N.reshape(ok!(N.iota(:s32, {6}, 0, :cpu)), {2, 3}))
    idx = ok!(N.from_binary(s32([1, 2, 0, 0]), :s32, {2, 2}, :cpu))
    assert read_s32(ok!(N.gather(a, idx, nil))) == [5, 0]
    col = ok!(N.from_binary(s32([2, 0]), :s32, {2, 1}, :cpu))
    # axes: [1] keeps axis 0 whole: rows of [a[:, 2], a[:, 0]]
    assert read_s32(ok!(N.gather(a, col, [1]))) == [2, 5, 0, 3]
    t = ok!(N.take(a, ok!(N.from_binary(s32([2, 2, 0]), :s32, {3}, :cpu)), 1))
    assert N.info(t) == {:ok, {2, 3}, :s32, :cpu}
    assert read_s32(t) == [2, 2, 0, 5, 5, 3]
    along = ok!(N.from_binary(s32([1, 0]), :s32, {2, 1}, :cpu))
    assert read_s32(ok!(N.take_along_axis(a, along, 1))) == [1, 3]
    upd = ok!(N.from_binary(s32([10, 20, 30, 40]), :s32, {4}, :cpu))
    rows = ok!(N.from_binary(s32([0, 0, 1, 2, 0, 0, 1, 2]), :s32, {4, 2}, :cpu))
    # repeated rows add up; put lets the last one win
    assert read_s32(ok!(N.indexed_add(a, rows, upd, nil))) == [40, 1, 2, 3, 4, 65]
    assert read_s32(ok!(N.indexed_put(a, rows, upd, nil))) == [30, 1, 2, 3, 4, 40]
    assert {:error, {:argument, msg}} = N.gather(a, ok!(N.from_binary(f32([0.0]), :f32, {1}, :cpu)), nil)
    assert msg =~ "[gather]"
  end

  test "cumulative, sort, argsort and top_k" do
    x = ok!(N.from_binary(f32([3.0, 1.0, 2.0, 1.0]), :f32, {4}, :cpu))
    assert read_f32(ok!(N.cumulative_sum(x, 0, false))) == [3.0, 4.0, 6.0, 7.0]
    assert read_f32(ok!(N.cumulative_sum(x, 0, true))) == [7.0, 4.0, 3.0, 1.0]
    assert read_f32(ok!(N.cumulative_max(x, 0, false))) == [3.0, 3.0, 3.0, 3.0]
    assert read_f32(ok!(N.cumulative_product(x, 0, false))) == [3.0, 3.0, 6.0, 6.0]
    assert read_f32(ok!(N.sort(x, 0, false))) == [1.0, 1.0, 2.0, 3.0]
    # stable in both directions: equal elements keep their order
    assert read_s64(ok!(N.argsort(x, 0, false))) == [1, 3, 2, 0]
    assert read_s64(ok!(N.argsort(x, 0, true))) == [0, 2, 1, 3]
    {:ok, {v, i}} = N.top_k(x, 2)
    assert read_f32(v) == [3.0, 2.0]
    assert read_s64(i) == [0, 2]
    assert {:error, {:argument, _}} = N.top_k(x, 5)
    assert {:error, {:argument, _}} = N.sort(x, 3, false)
  end

  test "linear algebra: triangular_solve, solve, determinant, qr, lu, eigh, svd" do
    # a = [[2, 0], [1, 4]]
    a = ok!(N.from_binary(f32([2.0, 0.0, 1.0, 4.0]), :f32, {2, 2}, :cpu))
    b = ok!(N.from_binary(f32([2.0, 9.0]), :f32, {2}, :cpu))
    assert read_f32(ok!(N.triangular_solve(a, b, true, true, :none))) == [1.0, 2.0]
    # a^T x = b: [[2, 1], [0, 4]] x = [2, 9] -> x = [-1/8, 9/4]
    assert read_f32(ok!(N.triangular_solve(a, b, true, true, :transpose))) == [-0.125, 2.25]
    assert {:error, {:argument, _}} = N.triangular_solve(a, b, true, true, :sideways)
    assert read_f32(ok!(N.solve(a, b))) == [1.0, 2.0]
    assert read_f32(ok!(N.determinant(a))) == [8.0]
    {:ok, {q, r}} = N.qr(a, false)
    assert N.info(q) == {:ok, {2, 2}, :f32, :cpu} and N.info(r) == {:ok, {2, 2}, :f32, :cpu}
    {:ok, {p, l, u}} = N.lu(a)
    assert read_f32(p) == [1.0, 0.0, 0.0, 1.0]
    assert read_f32(l) == [1.0, 0.0, 0.5, 1.0]
    assert read_f32(u) == [2.0, 0.0, 0.0, 4.0]
    # diag(3, 1): eigenvalues ascending
    d = ok!(N.from_binary(f32([3.0, 0.0, 0.0, 1.0]), :f32, {2, 2}, :cpu))
    {:ok, {w, _v}} = N.eigh(d)
    assert read_f32(w) == [1.0, 3.0]
    {:ok, {_u, s, _vt}} = N.svd(d, true)
    assert read_f32(s) == [3.0, 1.0]
    assert {:error, {:argument, msg}} = N.cholesky(ok!(N.iota(:f32, {2, 3}, 0, :cpu)))
    assert msg =~ "[cholesky]"
  end

  test "windows, conv and fft" do
    x = ok!(N.from_binary(f32([1.0, 3.0, 2.0, 5.0, 4.0]), :f32, {5}, :cpu))
    # window 2, stride 1, padding {0, 1}
    assert read_f32(ok!(N.window_sum(x, [2], [1], [0], [1], [1]))) == [4.0, 5.0, 7.0, 9.0, 4.0]
    assert read_f32(ok!(N.window_max(x, [2], [2], [0], [0], [1]))) == [3.0, 5.0]
    # dilation 2: x[i] + x[i + 2]
    assert read_f32(ok!(N.window_sum(x, [2], [1], [0], [0], [2]))) == [3.0, 8.0, 6.0]
    src = ok!(N.from_binary(f32([10.0, 20.0]), :f32, {2}, :cpu))
    init = ok!(N.from_binary(f32([0.0]), :f32, {}, :cpu))
    assert read_f32(ok!(N.window_scatter_max(x, src, init, [2], [2], [0], [0], [1]))) ==
             [0.0, 10.0, 0.0, 20.0, 0.0]
    assert {:error, {:argument, _}} = N.window_sum(x, [2, 2], [1], [0], [0], [1])

    # conv: input [1, 1, 5], kernel [1, 1, 2] = [1, -1]: x[i] - x[i + 1]
    inp = ok!(N.reshape(x, {1, 1, 5}))
    k = ok!(N.from_binary(f32([1.0, -1.0]), :f32, {1, 1, 2}, :cpu))
    assert read_f32(ok!(N.conv(inp, k, [1], [0], [0], [1], [1], 1, 1, nil, nil, nil))) ==
             [-2.0, 1.0, -3.0, 1.0]
    assert {:error, {:argument, _}} = N.conv(inp, k, [1, 1], [0], [0], [1], [1], 1, 1, nil, nil, nil)

    # fft of [1, 0, 0, 0] is all ones; of [0, 1, 0, 0] is 1, -i, -1, i
    one = ok!(N.as_type(ok!(N.from_binary(f32([1.0, 0.0, 0.0, 0.0]), :f32, {4}, :cpu)), :c64))
    assert read_f32(ok!(N.fft(one, 4))) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    e1 = ok!(N.as_type(ok!(N.from_binary(f32([0.0, 1.0, 0.0, 0.0]), :f32, {4}, :cpu)), :c64))
    assert read_f32(ok!(N.fft(e1, 4))) == [1.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 1.0]
    # ifft(fft(x)) == x; length 3 zero-pads; rfft keeps n/2 + 1 bins
    back = ok!(N.ifft(ok!(N.fft(e1, 4)), 4))
    assert Enum.map(read_f32(back), &Float.round(&1, 6)) == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert {:ok, _} = N.fft(one, 3)
    r = ok!(N.rfft(ok!(N.from_binary(f32([1.0, 2.0, 3.0, 4.0]), :f32, {4}, :cpu)), 4))
    assert read_f32(r) == [10.0, 0.0, -2.0, 2.0, -2.0, 0.0]
    assert {:error, {:argument, msg}} = N.fft(x, 4)
    assert msg =~ "[fft]"
  end

  test "errors name the op, shapes and dtypes" do
    a = ok!(N.from_binary(f32([1.0, 2.0]), :f32, {2}, :cpu))
    i = ok!(N.from_binary(s32([1, 2]), :s32, {2}, :cpu))
    assert {:error, {:argument, msg}} = N.add(a, i)
    assert msg =~ "[add]" and msg =~ "f32" and msg =~ "s32"
    assert {:error, {:argument, msg}} = N.reshape(a, {3})
    assert msg =~ "[reshape]" and msg =~ "[2]"
    assert {:error, {:argument, msg}} = N.from_binary(<<1, 2, 3>>, :f32, {2}, :cpu)
    assert msg =~ "[from_data]"
    assert {:error, {:argument, _}} = N.from_binary(f32([1.0]), :f99, {1}, :cpu)
    assert {:error, {:argument, _}} = N.sum(a, [5], false)
    assert {:error, {:argument, _}} = N.bitwise_and(a, a)
  end

  test "deallocate is idempotent and later use is an error" do
    a = ok!(N.from_binary(f32([1.0]), :f32, {1}, :cpu))
    assert N.deallocate(a) == :ok
    assert N.deallocate(a) == :already_deallocated
    assert {:error, {:argument, msg}} = N.exp(a)
    assert msg =~ "deallocated"
  end

  test "to_binary keeps the buffer alive after the array is deallocated" do
    a = ok!(N.from_binary(f32([4.0, 5.0]), :f32, {2}, :cpu))
    b = ok!(N.add(a, a))
    bin = ok!(N.read(b))
    N.deallocate(b)
    :erlang.garbage_collect()
    assert bin == f32([8.0, 10.0])
  end

  test "many processes evaluating at once all get the right answers" do
    tasks =
      for k <- 1..32 do
        Task.async(fn ->
          # Half the processes use their own stream, half the default one.
          s = if rem(k, 2) == 0, do: ok!(N.stream_new(:cpu)), else: nil
          a = ok!(N.from_binary(f32(Enum.map(1..1000, &(&1 * 1.0))), :f32, {1000}, :cpu))
          kk = ok!(N.from_binary(f32([k * 1.0]), :f32, {}, :cpu))
          r = ok!(N.sum(ok!(N.multiply(a, kk)), nil, false))
          :ok = N.eval([r], s)
          [v] = read_f32(r)
          v == k * 500_500.0
        end)
      end

    assert Enum.all?(Task.await_many(tasks, 60_000))
  end

  test "random garbage never crashes the VM and later results stay right" do
    :rand.seed(:exsss, {1, 2, 3})
    a = ok!(N.from_binary(f32([1.0, 2.0]), :f32, {2}, :cpu))
    garbage = fn ->
      Enum.random([
        nil, :foo, -1, 2 ** 70, 1.5, "bin", <<1, 2, 3>>, [], [1, -2], {1, 2},
        {-1}, %{}, self(), make_ref(), a, [a, :x], {:cuda, 99}, :cpu, [[1]],
        List.duplicate(1, 40), :f32, :s64, true
      ])
    end

    for _ <- 1..20_000 do
      {name, arity} = Enum.random(N.nifs())

      # from_address reads raw memory by contract (Nx.from_pointer).
      if name != :from_address do
        args = for _ <- 1..arity//1, do: garbage.()

        try do
          apply(N, name, args)
        rescue
          ArgumentError -> :ok
        end
      end
    end

    # `a` may have been deallocated by the garbage (deallocate/1 is fair
    # game); fresh arrays must compute correctly.
    b = ok!(N.from_binary(f32([1.0, 2.0]), :f32, {2}, :cpu))
    assert read_f32(ok!(N.add(b, b))) == [2.0, 4.0]
    assert read_f32(ok!(N.sum(ok!(N.exp(b)), nil, false))) |> hd() |> Kernel.-(:math.exp(1) + :math.exp(2)) |> abs() < 1.0e-4
  end
end
