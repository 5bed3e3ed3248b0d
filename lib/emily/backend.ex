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
  # reduce/window_reduce only when their function is not elementwise.
  @fallback_ops [:reduce, :window_reduce]
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
  def dtype({:s, 2}), do: :s2
  def dtype({:s, 4}), do: :s4
  def dtype({:u, 2}), do: :u2
  def dtype({:u, 4}), do: :u4
  def dtype({:f, 8}), do: :f8
  def dtype({:f8_e4m3fn, 8}), do: :f8_e4m3fn
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

  # A tensor of another backend (a number Nx turned into a tensor, say)
  # joins an op on the device of its Emily operands: `Nx.multiply(t, 2)`
  # with t on {:cuda, 0} stays there.
  defp from_nx(%T{data: %B{ref: ref}}, _dev), do: ref
  defp from_nx(%T{} = t, dev), do: t |> Nx.backend_copy({B, device: dev}) |> from_nx()

  defp dev_of(%T{data: %B{device: d}}), do: d
  defp dev_of(_), do: :cpu

  # The device of the first Emily tensor among ts (:cpu if none).
  defp dev_in(ts), do: Enum.find_value(ts, :cpu, fn
    %T{data: %B{device: d}} -> d
    _ -> nil
  end)

  # The engine array of `t` cast to `type`.
  defp typed(%T{type: type} = t, type), do: from_nx(t)
  defp typed(%T{} = t, type), do: unwrap!(N.as_type(from_nx(t), dtype(type)))
  defp typed(%T{type: type} = t, type, dev), do: from_nx(t, dev)
  defp typed(%T{} = t, type, dev), do: unwrap!(N.as_type(from_nx(t, dev), dtype(type)))

  defp cast_result(ref, %T{type: type}) do
    {:ok, _shape, dt, _dev} = N.info(ref)
    if dt == dtype(type), do: ref, else: unwrap!(N.as_type(ref, dtype(type)))
  end

  defp scalar_ref(value, type, device) do
    bin = number_binary(value, type)
    unwrap!(N.full(bin, dtype(type), {}, device))
  end

  # One element in the engine's encoding: sub-byte types take a whole byte
  # (the value in its low bits), unlike Nx's packed bitstrings.
  defp number_binary(value, {kind, bits} = type) when bits < 8 do
    <<v::size(bits)>> = Nx.tensor(value, type: type, backend: Nx.BinaryBackend) |> Nx.to_binary()
    v = if kind == :s and v >= Bitwise.bsl(1, bits - 1), do: v - Bitwise.bsl(1, bits), else: v
    <<v::signed-8>>
  end

  defp number_binary(value, type) do
    Nx.tensor(value, type: type, backend: Nx.BinaryBackend)
    |> Nx.to_binary()
  end

  # Sub-byte tensors cross the boundary as whole bytes (the last one padded
  # with zero bits); Nx's binaries are bitstrings of exactly size * bits.
  defp pad_bits(bits), do: <<bits::bitstring, 0::size(8 - rem(bit_size(bits), 8))>>

  defp trim_bits(bin, {_, bits}, count) when bits < 8 do
    <<b::bitstring-size(count * bits), _::bitstring>> = bin
    b
  end

  defp trim_bits(bin, _type, _count), do: bin

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
    binary =
      if is_bitstring(binary) and not is_binary(binary),
        do: pad_bits(binary),
        else: IO.iodata_to_binary(binary)

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
      bin = trim_bits(bin, t.type, if(limit < 0, do: Nx.size(t), else: min(limit, Nx.size(t))))
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
      # Arrays are immutable, so the copy shares the data, but it is a new
      # handle (a reshape to the same shape is a view): deallocating one
      # tensor must not take the other with it.
      N.reshape(from_nx(t), t.shape) |> unwrap!() |> to_nx(t, dev)
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
  defp index_ref(%T{} = t, device), do: from_nx(t, device)

  @impl true
  def put_slice(%T{type: type} = out, %T{} = t, starts, %T{} = slice) do
    dev = dev_in([t, slice])
    starts = Enum.map(starts, &index_ref(&1, dev))
    N.put_slice(typed(t, type, dev), typed(slice, type, dev), starts) |> unwrap!() |> to_nx(out, dev)
  end

  @impl true
  def concatenate(%T{type: type} = out, tensors, axis) do
    dev = dev_in(tensors)
    refs = Enum.map(tensors, &typed(&1, type, dev))
    N.concatenate(refs, axis) |> unwrap!() |> to_nx(out, dev)
  end

  @impl true
  def stack(%T{type: type} = out, tensors, axis) do
    dev = dev_in(tensors)

    refs =
      Enum.map(tensors, fn t ->
        shape = t.shape |> Tuple.insert_at(axis, 1)
        unwrap!(N.reshape(typed(t, type, dev), shape))
      end)

    N.concatenate(refs, axis) |> unwrap!() |> to_nx(out, dev)
  end

  @impl true
  def select(%T{type: type} = out, pred, on_true, on_false) do
    dev = dev_in([pred, on_true, on_false])

    N.select(from_nx(pred, dev), typed(on_true, type, dev), typed(on_false, type, dev))
    |> unwrap!()
    |> to_nx(out, dev)
  end

  @impl true
  def clip(%T{type: type} = out, %T{} = t, min, max) do
    dev = dev_in([t, min, max])
    N.clip(typed(t, type, dev), typed(min, type, dev), typed(max, type, dev)) |> unwrap!() |> to_nx(out, dev)
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

      dev = dev_in([a, b])
      res = apply(N, op, [typed(a, type, dev), typed(b, type, dev)]) |> unwrap!()
      res |> cast_result(out) |> to_nx(out, dev)
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

  ## Indexing

  @impl true
  def gather(%T{} = out, %T{} = t, %T{} = indices, opts) do
    N.gather(from_nx(t), from_nx(indices), opts[:axes])
    |> unwrap!()
    |> cast_result(out)
    |> to_nx(out, dev_of(t))
  end

  for op <- [:indexed_add, :indexed_put] do
    @impl true
    def unquote(op)(%T{type: type} = out, %T{} = t, %T{} = indices, %T{} = updates, opts) do
      apply(N, unquote(op), [typed(t, type), from_nx(indices), typed(updates, type), opts[:axes]])
      |> unwrap!()
      |> to_nx(out, dev_of(t))
    end
  end

  ## Sorting

  @impl true
  def sort(%T{} = out, %T{shape: {}} = t, _opts), do: to_nx(from_nx(t), out, dev_of(t))

  def sort(%T{} = out, %T{} = t, opts) do
    N.sort(from_nx(t), opts[:axis], opts[:direction] == :desc)
    |> unwrap!()
    |> to_nx(out, dev_of(t))
  end

  @impl true
  def argsort(%T{type: type} = out, %T{shape: {}} = t, _opts) do
    dev = dev_of(t)
    to_nx(scalar_ref(0, type, dev), out, dev)
  end

  def argsort(%T{} = out, %T{} = t, opts) do
    N.argsort(from_nx(t), opts[:axis], opts[:direction] == :desc)
    |> unwrap!()
    |> cast_result(out)
    |> to_nx(out, dev_of(t))
  end

  ## Linear algebra

  @impl true
  def triangular_solve(%T{type: type} = out, %T{} = a, %T{} = b, opts) do
    ct = linalg_type(type)
    a_ref = typed(a, ct)

    {a_ref, transform} =
      case opts[:transform_a] do
        :conjugate when elem(ct, 0) == :c -> {unwrap!(N.conjugate(a_ref)), :none}
        :transpose -> {a_ref, :transpose}
        _ -> {a_ref, :none}
      end

    N.triangular_solve(a_ref, typed(b, ct), opts[:left_side] != false, opts[:lower] != false, transform)
    |> unwrap!()
    |> cast_result(out)
    |> to_nx(out, dev_of(a))
  end

  # LAPACK works in f32/f64/c64/c128: f16, bf16 (and integers, already
  # promoted by Nx's output type) compute in f32 and are cast back.
  defp linalg_type({:c, _} = t), do: t
  defp linalg_type({:f, 64}), do: {:f, 64}
  defp linalg_type(_), do: {:f, 32}

  ## Blocks

  @impl true
  def block(%Nx.Block.LogicalNot{}, out, [t], _fun) do
    N.logical_not(from_nx(t)) |> unwrap!() |> cast_result(out) |> to_nx(out, dev_of(t))
  end

  def block(%Nx.Block.Phase{}, %T{type: type} = out, [%T{type: {:c, _}} = t], _fun) do
    ref = from_nx(t)
    im = unwrap!(N.imag(ref))
    re = unwrap!(N.real(ref))
    N.atan2(im, re) |> unwrap!() |> cast_result(%{out | type: type}) |> to_nx(out, dev_of(t))
  end

  for {mod, op} <- [
        {Nx.Block.CumulativeSum, :cumulative_sum},
        {Nx.Block.CumulativeProduct, :cumulative_product},
        {Nx.Block.CumulativeMax, :cumulative_max},
        {Nx.Block.CumulativeMin, :cumulative_min}
      ] do
    def block(%unquote(mod){axis: axis, reverse: reverse}, %T{type: type} = out, [t], fun) do
      if match?({:c, _}, type) and unquote(op) in [:cumulative_max, :cumulative_min] do
        apply(fun, [%unquote(mod){axis: axis, reverse: reverse}, t])
      else
        apply(N, unquote(op), [typed(t, type), axis, reverse])
        |> unwrap!()
        |> to_nx(out, dev_of(t))
      end
    end
  end

  def block(%Nx.Block.Take{axis: axis}, %T{} = out, [t, indices], _fun) do
    N.take(from_nx(t), from_nx(indices), axis) |> unwrap!() |> cast_result(out) |> to_nx(out, dev_of(t))
  end

  def block(%Nx.Block.TakeAlongAxis{axis: axis}, %T{} = out, [t, indices], _fun) do
    N.take_along_axis(from_nx(t), from_nx(indices), axis)
    |> unwrap!()
    |> cast_result(out)
    |> to_nx(out, dev_of(t))
  end

  def block(%Nx.Block.TopK{k: k}, {%T{} = out_v, %T{} = out_i}, [t], _fun) do
    {v, i} = unwrap!(N.top_k(from_nx(t), k))
    dev = dev_of(t)
    {v |> cast_result(out_v) |> to_nx(out_v, dev), i |> cast_result(out_i) |> to_nx(out_i, dev)}
  end

  def block(%Nx.Block.AllClose{} = o, %T{} = out, [a, b], fun) do
    if Nx.Type.integer?(a.type) and Nx.Type.integer?(b.type) do
      apply(fun, [o, a, b])
    else
      all_close(o, out, a, b)
    end
  end

  def block(%Nx.Block.LinAlg.Cholesky{}, %T{type: type} = out, [t], _fun) do
    N.cholesky(typed(t, linalg_type(type))) |> unwrap!() |> cast_result(out) |> to_nx(out, dev_of(t))
  end

  def block(%Nx.Block.LinAlg.Solve{}, %T{type: type} = out, [a, b], _fun) do
    ct = linalg_type(type)
    N.solve(typed(a, ct), typed(b, ct)) |> unwrap!() |> cast_result(out) |> to_nx(out, dev_of(a))
  end

  def block(%Nx.Block.LinAlg.Determinant{}, %T{type: type} = out, [t], _fun) do
    N.determinant(typed(t, linalg_type(type)))
    |> unwrap!()
    |> cast_result(out)
    |> to_nx(out, dev_of(t))
  end

  def block(%Nx.Block.LinAlg.QR{mode: mode}, {%T{type: type} = out_q, out_r}, [t], _fun) do
    {q, r} = unwrap!(N.qr(typed(t, linalg_type(type)), mode == :complete))
    dev = dev_of(t)
    {q |> cast_result(out_q) |> to_nx(out_q, dev), r |> cast_result(out_r) |> to_nx(out_r, dev)}
  end

  def block(%Nx.Block.LinAlg.LU{}, {out_p, %T{type: type} = out_l, out_u}, [t], _fun) do
    {p, l, u} = unwrap!(N.lu(typed(t, linalg_type(type))))
    dev = dev_of(t)

    {p |> cast_result(out_p) |> to_nx(out_p, dev), l |> cast_result(out_l) |> to_nx(out_l, dev),
     u |> cast_result(out_u) |> to_nx(out_u, dev)}
  end

  def block(%Nx.Block.LinAlg.SVD{full_matrices?: full}, {%T{type: type} = out_u, out_s, out_vt}, [t], _fun) do
    {u, s, vt} = unwrap!(N.svd(typed(t, linalg_type(type)), full != false))
    dev = dev_of(t)

    {u |> cast_result(out_u) |> to_nx(out_u, dev), s |> cast_result(out_s) |> to_nx(out_s, dev),
     vt |> cast_result(out_vt) |> to_nx(out_vt, dev)}
  end

  def block(%Nx.Block.LinAlg.Eigh{eps: eps}, {%T{type: type} = out_w, out_v}, [t], _fun) do
    eigh(eps, type, out_w, out_v, t)
  end

  def block(%fft{} = struct, out, args, _fun)
      when fft in [Nx.Block.FFT2, Nx.Block.IFFT2, Nx.Block.RFFT, Nx.Block.IRFFT],
      do: fft_block(struct, out, args)

  def block(struct, _output, args, fun) do
    # Blocks without an engine kernel run their defining function, which
    # calls back into this backend op by op: native, not a fallback.
    apply(fun, [struct | args])
  end

  defp fft_block(%Nx.Block.FFT2{lengths: lengths, axes: axes, eps: eps}, out, [t]),
    do: fft2(:fft2, lengths, axes, eps, out, t)

  defp fft_block(%Nx.Block.IFFT2{lengths: lengths, axes: axes, eps: eps}, out, [t]),
    do: fft2(:ifft2, lengths, axes, eps, out, t)

  defp fft_block(%Nx.Block.RFFT{length: n, axis: axis, eps: eps}, %T{type: type} = out, [t]) do
    rank = tuple_size(t.shape)

    typed(t, Nx.Type.to_real(type))
    |> axes_last(rank, [axis], &unwrap!(N.rfft(&1, n)))
    |> cast_result(out)
    |> fft_clean(eps, type, dev_of(t))
    |> to_nx(out, dev_of(t))
  end

  defp fft_block(%Nx.Block.IRFFT{length: n, axis: axis, eps: eps}, %T{type: type} = out, [t]) do
    rank = tuple_size(t.shape)
    # complex input of the output's precision (f64 -> c128, others -> c64)
    ct = if type == {:f, 64} or t.type == {:c, 128}, do: {:c, 128}, else: {:c, 64}

    typed(t, ct)
    |> axes_last(rank, [axis], &unwrap!(N.irfft(&1, n)))
    |> cast_result(out)
    |> fft_clean(if(Nx.Type.float?(type), do: eps), type, dev_of(t))
    |> to_nx(out, dev_of(t))
  end

  # Nx.LinAlg.eigh's definition orders eigenvalues by descending absolute
  # value (a stable argsort) and flushes |x| <= eps to zero in both outputs;
  # the engine (LAPACK) returns them ascending. Eigenvectors are determined
  # up to sign (phase): each is scaled so its largest-magnitude entry is real
  # and positive, which is what Nx's Jacobi iteration yields for the usual
  # cases.
  defp eigh(eps, type, out_w, out_v, t) do
    dev = dev_of(t)
    ct = linalg_type(type)
    {w, v} = unwrap!(N.eigh(typed(t, ct)))
    rank = tuple_size(t.shape)
    n = elem(t.shape, rank - 1)

    order = unwrap!(N.argsort(unwrap!(N.abs(w)), rank - 2, true))
    w = unwrap!(N.take_along_axis(w, order, rank - 2))
    # columns of v follow the same order: broadcast the order over the rows
    vshape = t.shape
    v_order = unwrap!(N.broadcast(unwrap!(N.reshape(order, put_elem(vshape, rank - 2, 1))), vshape, nil))
    v = unwrap!(N.take_along_axis(v, v_order, rank - 1))

    # sign/phase: the entry of largest magnitude in each column made positive
    vabs = unwrap!(N.abs(v))
    imax = unwrap!(N.argmax(vabs, rank - 2, true, false))
    pivot = unwrap!(N.take_along_axis(v, imax, rank - 2))
    pabs = unwrap!(N.take_along_axis(vabs, imax, rank - 2))
    pabs_c = if match?({:c, _}, ct), do: unwrap!(N.as_type(pabs, dtype(ct))), else: pabs
    # pivot / |pivot| is a unit phase; divide by it (|pivot| > 0 for an eigenvector)
    phase = unwrap!(N.divide(pivot, pabs_c))
    v = unwrap!(N.divide(v, phase))

    # (Nx's definition returns 1x1 inputs as they are)
    {w, v} =
      if n > 1 do
        epsw = scalar_ref(eps, Nx.Type.to_real(ct), dev)
        {flush_zeros(w, scalar_ref(0, Nx.Type.to_real(ct), dev), epsw),
         flush_zeros(v, scalar_ref(0, ct, dev), epsw)}
      else
        {w, v}
      end

    {w |> cast_result(out_w) |> to_nx(out_w, dev), v |> cast_result(out_v) |> to_nx(out_v, dev)}
  end

  defp flush_zeros(x, zero, eps) do
    small = unwrap!(N.less_equal(unwrap!(N.abs(x)), eps))
    unwrap!(N.select(small, zero, x))
  end

  # Nx.all_close for floating/complex inputs, as Nx defines it.
  defp all_close(%Nx.Block.AllClose{equal_nan: equal_nan, rtol: rtol, atol: atol}, out, a, b) do
    dev = dev_of(a)
    type = Nx.Type.merge(a.type, b.type)
    real = Nx.Type.to_real(type)
    ar = typed(a, type)
    br = typed(b, type)
    diff = unwrap!(N.abs(unwrap!(N.subtract(ar, br))))
    babs = unwrap!(N.abs(br))

    bound =
      unwrap!(N.add(scalar_ref(atol, real, dev), unwrap!(N.multiply(scalar_ref(rtol, real, dev), babs))))

    finite = unwrap!(N.less_equal(diff, bound))
    inf = unwrap!(N.logical_or(unwrap!(N.is_infinity(ar)), unwrap!(N.is_infinity(br))))
    entries = unwrap!(N.select(inf, unwrap!(N.equal(ar, br)), finite))

    entries =
      if equal_nan do
        nan = unwrap!(N.logical_and(unwrap!(N.is_nan(ar)), unwrap!(N.is_nan(br))))
        unwrap!(N.logical_or(nan, entries))
      else
        entries
      end

    N.all(entries, nil, false) |> unwrap!() |> cast_result(out) |> to_nx(out, dev)
  end

  ## Windows

  for op <- [:window_sum, :window_product, :window_max, :window_min] do
    @impl true
    def unquote(op)(%T{type: type} = out, %T{} = t, window, opts) do
      {lo, hi} = Enum.unzip(opts[:padding])
      rank = tuple_size(t.shape)
      strides = opts[:strides] || List.duplicate(1, rank)
      dilations = opts[:window_dilations] || List.duplicate(1, rank)

      apply(N, unquote(op), [typed(t, type), Tuple.to_list(window), strides, lo, hi, dilations])
      |> unwrap!()
      |> to_nx(out, dev_of(t))
    end
  end

  for op <- [:window_scatter_max, :window_scatter_min] do
    @impl true
    def unquote(op)(%T{type: type} = out, %T{} = t, %T{} = source, %T{} = init, window, opts) do
      {lo, hi} = Enum.unzip(opts[:padding])
      rank = tuple_size(t.shape)
      strides = opts[:strides] || List.duplicate(1, rank)
      ones = List.duplicate(1, rank)

      apply(N, unquote(op), [
        from_nx(t),
        typed(source, type),
        typed(init, type),
        Tuple.to_list(window),
        strides,
        lo,
        hi,
        ones
      ])
      |> unwrap!()
      |> to_nx(out, dev_of(t))
    end
  end

  ## Convolution

  @impl true
  def conv(%T{type: type} = out, %T{} = input, %T{} = kernel, opts) do
    # Integer inputs convolve exactly in s64 and round once into the float
    # result (as BinaryBackend does); f16/bf16 accumulate in f32.
    ct =
      cond do
        Nx.Type.integer?(input.type) and Nx.Type.integer?(kernel.type) -> {:s, 64}
        type in [{:f, 16}, {:bf, 16}] -> {:f, 32}
        true -> type
      end

    {lo, hi} = Enum.unzip(opts[:padding])

    N.conv(
      typed(input, ct),
      typed(kernel, ct),
      opts[:strides],
      lo,
      hi,
      opts[:input_dilation],
      opts[:kernel_dilation],
      opts[:feature_group_size] || 1,
      opts[:batch_group_size] || 1,
      opts[:input_permutation],
      opts[:kernel_permutation],
      opts[:output_permutation]
    )
    |> unwrap!()
    |> cast_result(out)
    |> to_nx(out, dev_of(input))
  end

  ## FFT

  for op <- [:fft, :ifft] do
    @impl true
    def unquote(op)(%T{} = out, %T{} = t, opts), do: fft_1d(unquote(op), out, t, opts)
  end

  for op <- [:fft, :ifft] do
    defp fft_1d(unquote(op), %T{type: type} = out, %T{} = t, opts) do
      rank = tuple_size(t.shape)
      axis = opts[:axis] || rank - 1
      n = opts[:length]

      typed(t, type)
      |> axes_last(rank, [axis], &unwrap!(N.unquote(op)(&1, n)))
      |> fft_clean(opts[:eps], type, dev_of(t))
      |> to_nx(out, dev_of(t))
    end
  end

  # Nx's :eps option ("a threshold backends can use for cleaning-up
  # results"): BinaryBackend sets real and imaginary parts with |x| <= eps to
  # +0.0, so exact zeros print without a sign. Subtracting the small parts
  # and adding +0.0 leaves exactly +0.0 there and the other parts untouched.
  defp fft_clean(ref, nil, _type, _dev), do: ref

  defp fft_clean(ref, eps, {:c, _} = type, dev) do
    real = Nx.Type.to_real(type)
    zero = scalar_ref(0, real, dev)
    eps = scalar_ref(eps, real, dev)
    small = fn x -> unwrap!(N.select(unwrap!(N.less_equal(unwrap!(N.abs(x)), eps)), x, zero)) end
    re = small.(unwrap!(N.real(ref)))
    im = small.(unwrap!(N.imag(ref)))
    im_i = unwrap!(N.multiply(unwrap!(N.as_type(im, dtype(type))), scalar_ref(Complex.new(0, 1), type, dev)))
    ref = unwrap!(N.subtract(ref, unwrap!(N.as_type(re, dtype(type)))))
    ref = unwrap!(N.subtract(ref, im_i))
    # x - x is +0.0, but a -0.0 part stays -0.0 through the subtractions
    # (and i * im can make one): -0.0 + 0.0 is +0.0
    unwrap!(N.add(ref, scalar_ref(0, type, dev)))
  end

  defp fft_clean(ref, eps, type, dev) do
    small = unwrap!(N.less_equal(unwrap!(N.abs(ref)), scalar_ref(eps, type, dev)))
    unwrap!(N.select(small, scalar_ref(0, type, dev), ref))
  end

  # Moves `axes` (in order) to the end, runs fun, and moves them back.
  defp axes_last(ref, rank, axes, fun) do
    perm = Enum.to_list(0..(rank - 1)) -- axes
    perm = perm ++ axes

    if perm == Enum.to_list(0..(rank - 1)) do
      fun.(ref)
    else
      inverse = perm |> Enum.with_index() |> Enum.sort() |> Enum.map(&elem(&1, 1))
      moved = unwrap!(N.transpose(ref, perm))
      unwrap!(N.transpose(fun.(moved), inverse))
    end
  end

  defp fft2(kind, [l1, l2], [ax1, ax2], eps, %T{type: type} = out, t) do
    rank = tuple_size(t.shape)

    typed(t, type)
    |> axes_last(rank, [ax1, ax2], &unwrap!(apply(N, kind, [&1, l1, l2])))
    |> fft_clean(eps, type, dev_of(t))
    |> to_nx(out, dev_of(t))
  end

  ## Reductions with a function

  # The function must be associative (Nx.reduce's contract) and, for the
  # native path, elementwise: it is applied to whole tensors, pairwise
  # over halves of the reduced axes (a tree, as XLA reduces), so it runs
  # log2(n) times, not n times. A function that does not keep its
  # arguments' shape (or raises on non-scalars) runs on the fallback, which
  # calls it element by element.
  @impl true
  def reduce(%T{type: type, shape: out_shape} = out, %T{shape: shape} = t, acc, opts, fun) do
    rank = tuple_size(shape)
    axes = opts[:axes] || Enum.to_list(0..(rank - 1)//1)
    kept = Enum.to_list(0..(rank - 1)//1) -- axes
    dev = dev_of(t)
    n = Enum.reduce(axes, 1, &(elem(shape, &1) * &2))
    rest = Enum.map(kept, &elem(shape, &1))
    flat_shape = List.to_tuple(rest ++ [n])

    try do
      x =
        t
        |> from_nx()
        |> then(&unwrap!(N.transpose(&1, kept ++ axes)))
        |> then(&unwrap!(N.reshape(&1, flat_shape)))
        |> then(&to_nx(&1, %{t | shape: flat_shape, names: List.duplicate(nil, tuple_size(flat_shape))}, dev))

      x = tree_reduce(x, n, fun)
      res = checked_apply(fun, [x, acc], x.shape)

      res
      |> from_nx()
      |> cast_result(out)
      |> then(&unwrap!(N.reshape(&1, out_shape)))
      |> to_nx(%{out | type: type}, dev)
    rescue
      # not elementwise (or raising on non-scalars): run it element by element
      _ -> Emily.Fallback.run(:reduce, [out, t, acc, opts, fun])
    end
  end

  defp tree_reduce(x, 1, _fun), do: x

  defp tree_reduce(%T{shape: shape} = x, n, fun) do
    last = tuple_size(shape) - 1
    h = div(n, 2)
    a = Nx.slice_along_axis(x, 0, h, axis: last)
    b = Nx.slice_along_axis(x, h, h, axis: last)
    c = checked_apply(fun, [a, b], a.shape) |> Nx.as_type(x.type)

    c =
      if rem(n, 2) == 1,
        do: Nx.concatenate([c, Nx.slice_along_axis(x, 2 * h, 1, axis: last)], axis: last),
        else: c

    tree_reduce(c, h + rem(n, 2), fun)
  end

  defp checked_apply(fun, args, shape) do
    case apply(fun, args) do
      %T{shape: ^shape, data: %B{}} = r ->
        r

      _ ->
        raise ArgumentError, "the reduction function is not elementwise"
    end
  end

  # Folds the function over the window positions in order (BinaryBackend's
  # order, starting from acc), each step a strided slice of the input padded
  # with acc: prod(window) applications on whole tensors.
  @impl true
  def window_reduce(%T{shape: out_shape} = out, %T{shape: shape} = t, acc, window, opts, fun) do
    rank = tuple_size(shape)
    strides = opts[:strides] || List.duplicate(1, rank)
    dilations = opts[:window_dilations] || List.duplicate(1, rank)
    dev = dev_of(t)
    config = Enum.map(opts[:padding], fn {lo, hi} -> {lo, hi, 0} end)
    acc_t = if match?(%T{}, acc), do: acc, else: Nx.tensor(acc, type: t.type, backend: {B, device: dev})
    padded = Nx.pad(t, Nx.as_type(acc_t, t.type), config)
    out_dims = Tuple.to_list(out_shape)
    lengths = Enum.zip_with(out_dims, strides, fn m, s -> (m - 1) * s + 1 end)

    offsets =
      window
      |> Tuple.to_list()
      |> Enum.reduce([[]], fn w, acc -> for prefix <- acc, i <- 0..(w - 1), do: prefix ++ [i] end)

    start = Nx.broadcast(acc_t, out_shape)

    try do
      offsets
      |> Enum.reduce(start, fn offset, res ->
        starts = Enum.zip_with(offset, dilations, &(&1 * &2))
        x = Nx.slice(padded, starts, lengths, strides: strides)
        checked_apply(fun, [x, res], out_shape)
      end)
      |> then(&(&1 |> from_nx() |> cast_result(out) |> to_nx(out, dev)))
    rescue
      _ -> Emily.Fallback.run(:window_reduce, [out, t, acc, window, opts, fun])
    end
  end
end
