defmodule Emily.TestProgress do
  @moduledoc false
  # An ExUnit formatter (beside the CLI one) that prints one line per
  # finished test: seconds since the start, how long the test took, its
  # state and name. On a long run cut short by a time limit (a GPU
  # machine's), the log still says which tests ran and how long each took.
  # test_helper.exs adds it when EMILY_TEST_PROGRESS is set.
  use GenServer

  @impl true
  def init(_opts), do: {:ok, System.monotonic_time(:millisecond)}

  @impl true
  def handle_cast({:test_finished, %ExUnit.Test{} = test}, start) do
    state =
      case test.state do
        nil -> "ok"
        {:failed, _} -> "FAILED"
        {:excluded, _} -> "excluded"
        {:skipped, _} -> "skipped"
        {:invalid, _} -> "invalid"
        other -> inspect(other)
      end

    elapsed = (System.monotonic_time(:millisecond) - start) / 1000

    IO.puts(
      "[progress #{:erlang.float_to_binary(elapsed, decimals: 1)}s] #{state} " <>
        "#{div(test.time, 1000)} ms #{inspect(test.module)} #{test.name}"
    )

    {:noreply, start}
  end

  def handle_cast(_event, start), do: {:noreply, start}
end
