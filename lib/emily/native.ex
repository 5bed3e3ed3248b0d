defmodule Emily.Native do
  @moduledoc """
  The NIF layer: one function per engine op, no policy.

  Op functions build lazy graph nodes and return `{:ok, ref}` or
  `{:error, {kind, message}}` at once; nothing computes on a scheduler.
  `eval/2` hands arrays to an engine stream and waits in a plain `receive`
  for the worker's reply. This module must stay loadable by plain `elixir`
  (no Nx, older Elixir), so the CI can test it without Mix.
  """

  @on_load :load_nif
  @doc false
  def load_nif do
    path =
      case System.get_env("EMILY_NIF_PATH") do
        nil ->
          case :code.priv_dir(:emily) do
            {:error, _} -> Path.expand("../../priv/emily_nif", __DIR__)
            dir -> Path.join(List.to_string(dir), "emily_nif")
          end

        p ->
          p
      end

    :erlang.load_nif(String.to_charlist(path), 0)
  end

  @binary_ops Emily.Ops.binary()
  @unary_ops Emily.Ops.unary()
  @reduce_ops Emily.Ops.reduce()

  # name => arity of every NIF; checked against op_names/0 by a parity test.
  @nifs [
          from_binary: 4,
          from_binary_dirty: 4,
          from_address: 5,
          data_address: 1,
          to_binary: 2,
          eval_async: 3,
          stream_new: 1,
          deallocate: 1,
          info: 1,
          memory_stats: 1,
          memory_control: 3,
          device_count: 1,
          num_threads: 0,
          op_names: 0,
          full: 4,
          iota: 4,
          eye: 3,
          as_type: 2,
          bitcast: 2,
          copy: 1,
          reshape: 2,
          squeeze: 2,
          broadcast: 3,
          transpose: 2,
          pad: 5,
          reverse: 2,
          slice: 4,
          slice_dynamic: 4,
          put_slice: 3,
          concatenate: 2,
          select: 3,
          clip: 3
        ] ++
          Enum.map(@binary_ops, &{&1, 2}) ++
          Enum.map(@unary_ops, &{&1, 1}) ++
          Enum.map(@reduce_ops, &{&1, 3}) ++
          [
            argmax: 4,
            argmin: 4,
            dot: 6,
            softmax: 2,
            logsumexp: 3,
            layer_norm: 4,
            rms_norm: 3,
            # indexing
            gather: 3,
            indexed_add: 4,
            indexed_put: 4,
            take: 3,
            take_along_axis: 3,
            # cumulative and sorting
            cumulative_sum: 3,
            cumulative_product: 3,
            cumulative_max: 3,
            cumulative_min: 3,
            sort: 3,
            argsort: 3,
            top_k: 2,
            # linear algebra
            triangular_solve: 5,
            cholesky: 1,
            determinant: 1,
            solve: 2,
            qr: 2,
            lu: 1,
            eigh: 1,
            svd: 2,
            # windows, convolution, FFT
            window_sum: 6,
            window_product: 6,
            window_max: 6,
            window_min: 6,
            window_scatter_max: 8,
            window_scatter_min: 8,
            conv: 12,
            fft: 2,
            ifft: 2,
            rfft: 2,
            irfft: 2,
            fft2: 3,
            ifft2: 3
          ]

  @doc "Every NIF this module expects, as `{name, arity}`."
  def nifs, do: @nifs

  for {name, arity} <- @nifs do
    args = Macro.generate_arguments(arity, __MODULE__)
    @doc false
    def unquote(name)(unquote_splicing(args)), do: :erlang.nif_error(:nif_not_loaded)
  end

  @doc """
  Evaluates a list of arrays on `stream` (nil: the device's default) and
  waits for the worker's reply. Returns `:ok` or `{:error, {kind, msg}}`.
  """
  def eval(refs, stream \\ nil) when is_list(refs) do
    ref = make_ref()

    case eval_async(refs, stream, ref) do
      :ok ->
        receive do
          {^ref, result} -> result
        end

      error ->
        error
    end
  end

  @doc "Evaluates `ref` and returns its bytes (a zero-copy resource binary)."
  def read(ref, limit \\ -1) do
    case eval([ref]) do
      :ok -> to_binary(ref, limit)
      error -> error
    end
  end
end
