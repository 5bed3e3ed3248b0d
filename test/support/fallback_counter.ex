defmodule Emily.FallbackCounter do
  @moduledoc false
  # Counts [:emily, :fallback, :start] events (op => count) in an ETS table.

  @table __MODULE__

  def attach do
    if :ets.whereis(@table) == :undefined do
      :ets.new(@table, [:named_table, :public, :set])
    end

    :telemetry.attach(
      "emily-fallback-counter",
      [:emily, :fallback, :start],
      &__MODULE__.handle/4,
      nil
    )
  end

  def handle(_event, _measurements, %{op: op}, _config) do
    :ets.update_counter(@table, op, 1, {op, 0})
  end

  @doc "Forgets one counted fallback of op (for tests that fall back on purpose)."
  def uncount(op), do: :ets.update_counter(@table, op, -1, {op, 0})

  def counts, do: :ets.tab2list(@table) |> Enum.reject(&(elem(&1, 1) == 0)) |> Map.new()
  def reset, do: :ets.delete_all_objects(@table)
end
