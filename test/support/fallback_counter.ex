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

  def counts, do: :ets.tab2list(@table) |> Map.new()
  def reset, do: :ets.delete_all_objects(@table)
end
