# The Nx suites: run with `mix test` (needs Nx through EMILY_NX_PATH).
# Every test runs with Emily.Backend as the default backend; fallbacks are
# counted through telemetry so suites can assert there were none.
Application.put_env(:emily, :fallback, :silent)
Emily.FallbackCounter.attach()
ExUnit.start()

ExUnit.after_suite(fn _ ->
  counts = Emily.FallbackCounter.counts()

  if counts == %{} do
    IO.puts("\nEmily fallbacks: none")
  else
    IO.puts("\nEmily fallbacks (op => count): #{inspect(counts)}")
  end
end)
