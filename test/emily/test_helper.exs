# The Nx suites: run with `mix test` (needs Nx through EMILY_NX_PATH).
# Every test runs with Emily.Backend as the default backend; fallbacks are
# counted through telemetry so suites can assert there were none.
#
# EMILY_TEST_DEVICE=cuda (or cuda:N) runs the Emily side of the
# differential suite (backend_test.exs, through Emily.TestGen) on that CUDA
# device; the default is the CPU. EMILY_TEST_UNSUPPORTED=record then records
# ops the device has no kernel for (listed at the end) instead of failing.
# Only the differential suite (backend_test.exs) follows EMILY_TEST_DEVICE.
Application.put_env(:emily, :fallback, :silent)
Emily.FallbackCounter.attach()

device = Emily.TestGen.parse_device(System.get_env("EMILY_TEST_DEVICE"))

with {:cuda, n} <- device do
  count = Emily.Native.device_count(:cuda)

  if n >= count do
    raise "EMILY_TEST_DEVICE=#{System.get_env("EMILY_TEST_DEVICE")}: no CUDA device #{n} " <>
            "(this build of the engine sees #{count} CUDA devices)"
  end
end

Application.put_env(:emily, :test_device, device)

unsupported_mode =
  case System.get_env("EMILY_TEST_UNSUPPORTED", "fail") do
    "record" -> :record
    "fail" -> :fail
    other -> raise "EMILY_TEST_UNSUPPORTED must be fail or record, got #{inspect(other)}"
  end

Application.put_env(:emily, :test_unsupported, unsupported_mode)
:ets.new(:emily_unsupported, [:named_table, :public, :set])
:ets.new(:emily_unsupported_count, [:named_table, :public, :set])

if device != :cpu, do: IO.puts("Emily device under test: #{inspect(device)} (unsupported ops: #{unsupported_mode})")
# EMILY_TEST_PROGRESS=1 prints a line per finished test (for runs under a
# time limit).
if System.get_env("EMILY_TEST_PROGRESS") not in [nil, "", "0"] do
  ExUnit.configure(formatters: [ExUnit.CLIFormatter, Emily.TestProgress])
end

ExUnit.start()

ExUnit.after_suite(fn _ ->
  counts = Emily.FallbackCounter.counts()

  if counts == %{} do
    IO.puts("\nEmily fallbacks: none")
  else
    IO.puts("\nEmily fallbacks (op => count): #{inspect(counts)}")
  end

  case Emily.TestGen.unsupported() do
    [] ->
      :ok

    list ->
      IO.puts("\nUnsupported on #{inspect(device)}: #{length(list)} op/type pairs, " <>
                "#{Emily.TestGen.unsupported_count()} checks skipped:")

      for {{op, type}, msg} <- list, do: IO.puts("  #{op} #{inspect(type)}: #{msg}")
  end
end)
