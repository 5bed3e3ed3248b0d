defmodule Emily.Backend do
  @moduledoc """
  An `Nx.Backend` running on Emily's native engine.

      Nx.global_default_backend(Emily.Backend)
      Nx.global_default_backend({Emily.Backend, device: :cpu})

  Tensors are lazy engine arrays: ops build a graph and the engine evaluates
  it (fusing elementwise chains) when data is read — `Nx.to_binary/1`,
  `Nx.to_number/1`, `inspect/1` — on the device's stream.

  ## Devices

  `device: :cpu` (the default) or `device: {:cuda, n}` when the engine was
  built with CUDA. A tensor stays where it was created; moving it is always
  explicit (`Nx.backend_transfer/2` or `Nx.backend_copy/2`). `inspect/1`
  shows the backend and device.

  ## Fallbacks

  An op the engine cannot run natively runs on `Nx.BinaryBackend` and emits
  `[:emily, :fallback, :start | :stop]` telemetry with the op, shapes and
  types. `config :emily, :fallback, :silent | :warn | :raise` decides what
  else happens (`:warn` logs once per op and shapes). The ops listed in
  `fallback_ops/0` are the only ones that can fall back.
  """

  @behaviour Nx.Backend

  defstruct [:ref, device: :cpu]

  alias Nx.Tensor, as: T
  alias Emily.Backend, as: B
  alias Emily.Native, as: N

  # Ops that still have no engine kernel; everything else is native.
  @fallback_ops [
    :gather,
    :indexed_add,
    :indexed_put,
    :window_sum,
    :window_product,
    :window_max,
    :window_min,
    :window_reduce,
    :window_scatter_max,
    :window_scatter_min,
    :reduce,
    :sort,
    :argsort,
    :conv,
    :fft,
    :ifft,
    :triangular_solve
  ]
  @doc "Ops that may fall back to `Nx.BinaryBackend`."
  def fallback_ops, do: @fallback_ops

  ## Options and devices

  @impl true
  def init(opts) do
    case Keyword.validate(opts, device: :cpu) do
      {:ok, opts} ->
        validate_device!(opts[:device])
        opts

      {:error, keys} ->
        raise ArgumentError, "unknown Emily.Backend options: #{inspect(keys)}"
    end
  end

  defp validate_device!(:cpu), do: :cpu

  defp validate_device!({:cuda, n} = d) when is_integer(n) and n >= 0 do
    count = N.device_count(:cuda)

    if n < count do
      d
    else
      raise ArgumentError,
            "device #{inspect(d)} is not available (#{count} CUDA devices in this build)"
    end
  end

  defp validate_device!(other),
    do: raise(ArgumentError, "invalid Emily device #{inspect(other)}, expected :cpu or {:cuda, n}")

  defp device(opts), do: Keyword.get(opts, :device, :cpu)

  ## Helpers

  @doc false
  def dtype({:u, 8}), do: :u8
  def dtype({:u, 16}), do: :u16
  def dtype({:u, 32}), do: :u32
  def dtype({:u, 64}), do: :u64
  def dtype({:s, 8}), do: :s8
  def dtype({:s, 16}), do: :s16
  def dtype({:s, 32}), do: :s32
  def dtype({:s, 64}), do: :s64
  def dtype({:f, 16}), do: :f16
  def dtype({:bf, 16}), do: :bf16
  def dtype({:f, 32}), do: :f32
  def dtype({:f, 64}), do: :f64
  def dtype({:c, 64}), do: :c64
  def dtype({:c, 128}), do: :c128
  def dtype(other), do: raise(ArgumentError, "Emily.Backend does not support type #{inspect(other)}")

  @doc false
  def supported_type?(type) do
    dtype(type)
    true
  rescue
    ArgumentError -> false
  end

  # Unwraps {:ok, ref} or raises with the engine's message (which already
  # names the op, shapes and dtypes).
  @doc false
  def unwrap!({:ok, ref}), do: ref
  def unwrap!(:ok), do: :ok

  def unwrap!({:error, {kind, msg}}) when is_binary(msg) do
    case kind do
      :oom -> raise RuntimeError, "Emily: out of memory: " <> msg
      :runtime -> raise RuntimeError, "Emily: " <> msg
      _ -> raise ArgumentError, msg
    end
  end

  def unwrap!(other), do: raise(RuntimeError, "Emily: unexpected NIF result #{inspect(other)}")

  defp to_nx(ref, %T{} = out, device) do
    %{out | data: %B{ref: ref, device: device}}
  end

  # The engine array of a tensor, transferring from another backend if needed.
  @doc false
  def from_nx(%T{data: %B{ref: ref}}), do: ref

  def from_nx(%T{} = t) do
    t |> Nx.backend_copy({B, []}) |> from_nx()
  end

  defp dev_of(%T{data: %B{device: d}}), do: d
  defp dev_of(_), do: :cpu

  # The engine array of `t` cast to `type`.
  defp typed(%T{type: type} = t, type), do: from_nx(t)
  defp typed(%T{} = t, type), do: unwrap!(N.as_type(from_nx(t), dtype(type)))

  defp cast_result(ref, %T{type: type}) do
    {:ok, _shape, dt, _dev} = N.info(ref)
    if dt == dtype(type), do: ref, else: unwrap!(N.as_type(ref, dtype(type)))
  end

  defp scalar_ref(value, type, device) do
    bin = number_binary(value, type)
    unwrap!(N.full(bin, dtype(type), {}, device))
  end

  defp number_binary(value, type) do
    Nx.tensor(value, type: type, backend: Nx.BinaryBackend)
    |> Nx.to_binary()
  end

  ## Creation

  @impl true
  def constant(%T{shape: shape, type: type} = out, value, opts) do
    dev = device(opts)
    check_type!(type, :constant)
    N.full(number_binary(value, type), dtype(type), shape, dev) |> unwrap!() |> to_nx(out, dev)
  end

  @impl true
  def from_binary(%T{shape: shape, type: type} = out, binary, opts) do
    dev = device(opts)
    check_type!(type, :from_binary)
    binary = IO.iodata_to_binary(binary)

    res =
      if byte_size(binary) > 65_536,
        do: N.from_binary_dirty(binary, dtype(type), shape, dev),
        else: N.from_binary(binary, dtype(type), shape, dev)

    res |> unwrap!() |> to_nx(out, dev)
  end

  @impl true
  def eye(%T{shape: shape, type: type} = out, opts) do
    dev = device(opts)
    N.eye(dtype(type), shape, dev) |> unwrap!() |> to_nx(out, dev)
  end

  @impl true
  def iota(%T{shape: shape, type: type} = out, nil, opts) do
    dev = device(opts)
    size = Tuple.product(shape)
    flat = unwrap!(N.iota(dtype(type), {size}, 0, dev))
    N.reshape(flat, shape) |> unwrap!() |> to_nx(out, dev)
  end

  def iota(%T{shape: shape, type: type} = out, axis, opts) do
    dev = device(opts)
    N.iota(dtype(type), shape, axis, dev) |> unwrap!() |> to_nx(out, dev)
  end

  defp check_type!(type, op) do
    unless supported_type?(type) do
      raise ArgumentError, "[#{op}] Emily.Backend does not support type #{inspect(type)}"
    end
  end

  ## Reading data

  @impl true
  def to_binary(%T{} = t, limit) do
    ref = from_nx(t)

    :telemetry.span([:emily, :to_binary], %{shape: t.shape, type: t.type}, fn ->
      eval!([ref])
      bin = unwrap!(N.to_binary(ref, limit))
      {bin, %{shape: t.shape, type: t.type, bytes: byte_size(bin)}}
    end)
  end

  @doc false
  def eval!(refs) do
    :telemetry.span([:emily, :eval], %{count: length(refs)}, fn ->
      {unwrap!(N.eval(refs)), %{count: length(refs)}}
    end)
  end

  @impl true
  def inspect(%T{} = tensor, inspect_opts) do
    limit = if inspect_opts.limit == :infinity, do: -1, else: inspect_opts.limit + 1
    binary = to_binary(tensor, min(limit, Nx.size(tensor)) |> max(-1))

    doc = Nx.Backend.inspect(tensor, binary, inspect_opts)

    if Application.get_env(:emily, :inspect_backend, true) do
      Inspect.Algebra.concat(["Emily.Backend<#{device_name(dev_of(tensor))}>", Inspect.Algebra.line(), doc])
    else
      doc
    end
  end

  defp device_name(:cpu), do: "cpu"
  defp device_name({:cuda, n}), do: "cuda:#{n}"

  @impl true
  def backend_copy(%T{} = t, B, opts) do
    dev = device(opts)

    if dev == dev_of(t) do
      # Arrays are immutable: a copy is the same array.
      to_nx(from_nx(t), t, dev)
    else
      from_binary(t, to_binary(t, -1), opts)
    end
  end

  def backend_copy(%T{} = t, backend, opts) do
    backend.from_binary(t, to_binary(t, -1), opts)
  end

  @impl true
  def backend_transfer(%T{} = t, backend, opts) do
    backend_copy(t, backend, opts)
  after
    backend_deallocate(t)
  end

  @impl true
  def backend_deallocate(%T{data: %B{ref: ref}}) do
    case N.deallocate(ref) do
      :ok -> :ok
      :already_deallocated -> :already_deallocated
      other -> unwrap!(other)
    end
  end

  @impl true
  def to_batched(%T{shape: out_shape} = out, %T{shape: shape} = t, opts) do
    leftover = opts[:leftover]
    batch = elem(out_shape, 0)
    total = elem(shape, 0)
    full = div(total, batch)
    rem = rem(total, batch)
    ref = from_nx(t)
    rank = tuple_size(shape)
    rest = shape |> Tuple.delete_at(0) |> Tuple.to_list()
    zeros = List.duplicate(0, rank - 1)
    ones = List.duplicate(1, rank)

    slice = fn start, len ->
      unwrap!(N.slice(ref, [start | zeros], [len | rest], ones))
    end

    batches = for i <- 0..(full - 1)//1, do: to_nx(slice.(i * batch, batch), out, dev_of(t))

    if rem != 0 and leftover == :repeat do
      last = slice.(full * batch, rem)
      wrap = slice.(0, batch - rem)
      joined = unwrap!(N.concatenate([last, wrap], 0))
      batches ++ [to_nx(joined, out, dev_of(t))]
    else
      batches
    end
  end

  @impl true
  def to_pointer(%T{} = t, opts) do
    opts = Keyword.validate!(opts, mode: :local, permissions: 0o400)

    if opts[:mode] != :local do
      raise ArgumentError, "Emily.Backend supports only mode: :local pointers"
    end

    ref = from_nx(t)
    eval!([ref])
    address = unwrap!(N.data_address(ref))
    %Nx.Pointer{kind: :local, address: address, data_size: Nx.byte_size(t)}
  end

  @impl true
  def from_pointer(%Nx.Pointer{kind: :local, address: address, data_size: size}, type, shape, backend_opts, opts) do
    opts = Keyword.validate!(opts, [:names])
    dev = device(backend_opts)
    out = Nx.template(shape, type, names: opts[:names])
    expected = Nx.byte_size(out)

    if size != expected do
      raise ArgumentError, "invalid pointer data_size for shape, expected: #{expected}, got: #{size}"
    end

    N.from_address(address, size, dtype(type), shape, dev) |> unwrap!() |> to_nx(out, dev)
  end

  def from_pointer(pointer, _type, _shape, _backend_opts, _opts) do
    raise ArgumentError, "Emily.Backend supports only local pointers, got: #{inspect(pointer)}"
  end

  ## Shape

  @impl true
  def as_type(%T{type: type} = out, %T{} = t) do
    N.as_type(from_nx(t), dtype(type)) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def bitcast(%T{type: type} = out, %T{} = t) do
    N.bitcast(from_nx(t), dtype(type)) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def reshape(%T{shape: shape} = out, %T{} = t) do
    N.reshape(from_nx(t), shape) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def squeeze(%T{shape: shape} = out, %T{} = t, _axes) do
    N.reshape(from_nx(t), shape) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def broadcast(%T{shape: shape} = out, %T{} = t, shape, axes) do
    N.broadcast(from_nx(t), shape, axes) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def transpose(%T{} = out, %T{} = t, axes) do
    N.transpose(from_nx(t), axes) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def pad(%T{type: type} = out, %T{} = t, pad_value, config) do
    {lo, hi, interior} =
      Enum.reduce(Enum.reverse(config), {[], [], []}, fn {l, h, i}, {ls, hs, is} ->
        {[l | ls], [h | hs], [i | is]}
      end)

    value = typed(pad_value, type)
    N.pad(typed(t, type), value, lo, hi, interior) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def reverse(%T{} = out, %T{} = t, axes) do
    N.reverse(from_nx(t), axes) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def slice(%T{shape: out_shape} = out, %T{} = t, starts, lengths, strides) do
    ref = from_nx(t)

    res =
      if Enum.all?(starts, &is_integer/1) do
        N.slice(ref, starts, lengths, strides)
      else
        N.slice_dynamic(ref, Enum.map(starts, &index_ref(&1, dev_of(t))), lengths, strides)
      end

    _ = out_shape
    res |> unwrap!() |> to_nx(out, dev_of(t))
  end

  defp index_ref(i, device) when is_integer(i), do: scalar_ref(i, {:s, 64}, device)
  defp index_ref(%T{} = t, _device), do: from_nx(t)

  @impl true
  def put_slice(%T{type: type} = out, %T{} = t, starts, %T{} = slice) do
    starts = Enum.map(starts, &index_ref(&1, dev_of(t)))
    N.put_slice(typed(t, type), typed(slice, type), starts) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  @impl true
  def concatenate(%T{type: type} = out, tensors, axis) do
    refs = Enum.map(tensors, &typed(&1, type))
    N.concatenate(refs, axis) |> unwrap!() |> to_nx(out, dev_of(hd(tensors)))
  end

  @impl true
  def stack(%T{type: type} = out, tensors, axis) do
    refs =
      Enum.map(tensors, fn t ->
        shape = t.shape |> Tuple.insert_at(axis, 1)
        unwrap!(N.reshape(typed(t, type), shape))
      end)

    N.concatenate(refs, axis) |> unwrap!() |> to_nx(out, dev_of(hd(tensors)))
  end

  @impl true
  def select(%T{type: type} = out, pred, on_true, on_false) do
    N.select(from_nx(pred), typed(on_true, type), typed(on_false, type))
    |> unwrap!()
    |> to_nx(out, dev_of(pred))
  end

  @impl true
  def clip(%T{type: type} = out, %T{} = t, min, max) do
    N.clip(typed(t, type), typed(min, type), typed(max, type)) |> unwrap!() |> to_nx(out, dev_of(t))
  end

  ## Elementwise

  @comparison_ops [:equal, :not_equal, :greater, :less, :greater_equal, :less_equal]
  @logical_ops [:logical_and, :logical_or, :logical_xor]

  for op <- Emily.Ops.binary() do
    @impl true
    def unquote(op)(%T{type: out_type} = out, %T{} = a, %T{} = b) do
      op = unquote(op)

      type =
        if op in @comparison_ops or op in @logical_ops,
          do: Nx.Type.merge(a.type, b.type),
          else: out_type

      res = apply(N, op, [typed(a, type), typed(b, type)]) |> unwrap!()
      res |> cast_result(out) |> to_nx(out, dev_of(a))
    end
  end

  # Ops whose input keeps its own type (their output type differs).
  @keep_input [:is_nan, :is_infinity, :real, :imag, :abs, :logical_not, :count_leading_zeros, :population_count]

  for op <- Emily.Ops.unary(), op != :logical_not do
    # :keep — the op takes its input's own type; :cast — cast to the output
    # type first (e.g. exp of an integer); abs keeps complex inputs only.
    mode =
      cond do
        op == :abs -> :abs
        op in @keep_input -> :keep
        true -> :cast
      end

    @impl true
    def unquote(op)(%T{type: out_type} = out, %T{} = t) do
      input =
        case unquote(mode) do
          :keep -> from_nx(t)
          :abs -> if match?({:c, _}, t.type), do: from_nx(t), else: typed(t, out_type)
          :cast -> typed(t, out_type)
        end

      N.unquote(op)(input) |> unwrap!() |> cast_result(out) |> to_nx(out, dev_of(t))
    end
  end

  ## Reductions

  for op <- [:sum, :product, :reduce_max, :reduce_min] do
    @impl true
    def unquote(op)(%T{type: type} = out, %T{} = t, opts) do
      apply(N, unquote(op), [typed(t, type), opts[:axes], opts[:keep_axes] || false])
      |> unwrap!()
      |> to_nx(out, dev_of(t))
    end
  end

  for op <- [:all, :any] do
    @impl true
    def unquote(op)(%T{} = out, %T{} = t, opts) do
      apply(N, unquote(op), [from_nx(t), opts[:axes], opts[:keep_axes] || false])
      |> unwrap!()
      |> cast_result(out)
      |> to_nx(out, dev_of(t))
    end
  end

  for op <- [:argmax, :argmin] do
    @impl true
    def unquote(op)(%T{} = out, %T{} = t, opts) do
      tie_high = opts[:tie_break] == :high

      apply(N, unquote(op), [from_nx(t), opts[:axis], opts[:keep_axis] || false, tie_high])
      |> unwrap!()
      |> cast_result(out)
      |> to_nx(out, dev_of(t))
    end
  end

  @impl true
  def dot(%T{type: type} = out, %T{} = a, ca, ba, %T{} = b, cb, bb) do
    N.dot(typed(a, type), ca, ba, typed(b, type), cb, bb) |> unwrap!() |> to_nx(out, dev_of(a))
  end

  ## Blocks

  @impl true
  def block(%Nx.Block.LogicalNot{}, out, [t], _fun) do
    N.logical_not(from_nx(t)) |> unwrap!() |> cast_result(out) |> to_nx(out, dev_of(t))
  end

  def block(struct, _output, args, fun) do
    # Blocks without an engine kernel run their defining function, which
    # calls back into this backend op by op: native, not a fallback.
    apply(fun, [struct | args])
  end

  ## Ops without an engine kernel yet: visible fallbacks

  for {op, arity} <- [
        gather: 4,
        indexed_add: 5,
        indexed_put: 5,
        window_sum: 4,
        window_product: 4,
        window_max: 4,
        window_min: 4,
        window_scatter_max: 6,
        window_scatter_min: 6,
        sort: 3,
        argsort: 3,
        conv: 4,
        fft: 3,
        ifft: 3,
        triangular_solve: 4
      ] do
    args = Macro.generate_arguments(arity, __MODULE__)

    @impl true
    def unquote(op)(unquote_splicing(args)) do
      Emily.Fallback.run(unquote(op), unquote(args))
    end
  end

  @impl true
  def reduce(out, t, acc, opts, fun), do: Emily.Fallback.run(:reduce, [out, t, acc, opts, fun])

  @impl true
  def window_reduce(out, t, acc, shape, opts, fun),
    do: Emily.Fallback.run(:window_reduce, [out, t, acc, shape, opts, fun])
end
