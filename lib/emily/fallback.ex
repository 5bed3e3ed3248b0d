defmodule Emily.Fallback do
  @moduledoc """
  Runs an op the engine has no kernel for on `Nx.BinaryBackend`, visibly.

  Every run emits `[:emily, :fallback, :start]` and `[:emily, :fallback,
  :stop]` telemetry with `%{op: op, shapes: [...], types: [...]}` metadata.
  `config :emily, :fallback, mode` picks what else happens:

    * `:warn` (default) — log a warning once per op and shapes
    * `:silent` — only the telemetry
    * `:raise` — raise instead of running
  """

  require Logger
  alias Nx.Tensor, as: T

  @doc false
  def run(op, args) do
    tensors = Enum.filter(List.flatten(args), &match?(%T{}, &1))
    meta = %{op: op, shapes: Enum.map(tensors, & &1.shape), types: Enum.map(tensors, & &1.type)}

    case Application.get_env(:emily, :fallback, :warn) do
      :raise ->
        raise ArgumentError,
              "Emily.Backend has no native #{op} for shapes #{inspect(meta.shapes)} " <>
                "and types #{inspect(meta.types)} (fallback mode is :raise)"

      :warn ->
        key = {__MODULE__, op, meta.shapes}

        unless :persistent_term.get(key, false) do
          :persistent_term.put(key, true)

          Logger.warning(
            "Emily.Backend: #{op} runs on Nx.BinaryBackend (shapes #{inspect(meta.shapes)}, " <>
              "types #{inspect(meta.types)})"
          )
        end

      _ ->
        :ok
    end

    :telemetry.span([:emily, :fallback], meta, fn ->
      device = device_of(tensors)
      [out | rest] = args
      binary_args = Enum.map(rest, &to_binary_backend/1)
      # Functions passed to the op (reduce, window_reduce) build tensors on
      # the default backend: keep them on BinaryBackend for the duration.
      previous = Nx.default_backend(Nx.BinaryBackend)

      result =
        try do
          apply(Nx.BinaryBackend, op, [out | binary_args])
        after
          Nx.default_backend(previous)
        end

      {from_binary_backend(result, device), meta}
    end)
  end

  defp device_of([%T{data: %Emily.Backend{device: d}} | _]), do: d
  defp device_of([_ | rest]), do: device_of(rest)
  defp device_of([]), do: :cpu

  defp to_binary_backend(%T{data: %Emily.Backend{}} = t),
    do: Nx.backend_copy(t, Nx.BinaryBackend)

  defp to_binary_backend(list) when is_list(list), do: Enum.map(list, &to_binary_backend/1)
  defp to_binary_backend(other), do: other

  defp from_binary_backend(%T{} = t, device), do: Nx.backend_transfer(t, {Emily.Backend, device: device})

  defp from_binary_backend(tuple, device) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> Enum.map(&from_binary_backend(&1, device)) |> List.to_tuple()
end
