defmodule Emily.Memory do
  @moduledoc """
  The engine's caching allocator, per device.

  `stats/1` returns `%{active: bytes, peak: bytes, cached: bytes, limit:
  bytes, allocations: n, cache_hits: n}` and emits a
  `[:emily, :memory, :stats]` telemetry event with those measurements.
  """

  alias Emily.Native, as: N

  def stats(device \\ :cpu) do
    stats = Emily.Backend.unwrap!(N.memory_stats(device))
    :telemetry.execute([:emily, :memory, :stats], stats, %{device: device})
    stats
  end

  @doc "Sets the peak to the currently active bytes."
  def reset_peak(device \\ :cpu), do: Emily.Backend.unwrap!(N.memory_control(device, :reset_peak, 0))

  @doc "Returns cached (freed but kept) buffers to the system."
  def clear_cache(device \\ :cpu), do: Emily.Backend.unwrap!(N.memory_control(device, :clear_cache, 0))

  @doc "Caps active + cached bytes (0 removes the cap); past it allocations fail."
  def set_limit(device \\ :cpu, bytes) when is_integer(bytes) and bytes >= 0,
    do: Emily.Backend.unwrap!(N.memory_control(device, :set_limit, bytes))
end
