# The Mix compiler that builds the native engine and the NIF through CMake.
# It lives here, not in lib/, because Mix needs it before lib/ compiles.
defmodule Mix.Tasks.Compile.EmilyNative do
  @moduledoc false
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    root = File.cwd!()
    build = Path.join(root, "_build/native-#{Mix.env()}")
    priv = Path.join(root, "priv")
    File.mkdir_p!(priv)

    # Configure once; afterwards `cmake --build` alone decides what changed,
    # so a no-change compile costs about a second.
    # EMILY_CMAKE_ARGS adds configure options, e.g. "-DEMILY_CUDA=OFF".
    unless File.exists?(Path.join(build, "CMakeCache.txt")) do
      extra = String.split(System.get_env("EMILY_CMAKE_ARGS", ""))
      cmake!(["-S", root, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
              "-DEMILY_TESTS=OFF", "-DEMILY_EXAMPLES=OFF" | extra])
    end

    jobs = System.schedulers_online() |> Integer.to_string()
    cmake!(["--build", build, "--target", "emily_nif", "-j", jobs])

    src = Path.join(build, "emily_nif.so")
    dst = Path.join(priv, "emily_nif.so")

    if stale?(src, dst) do
      # Copy to a temporary name and rename: a running VM that has the old
      # module mapped keeps a valid file.
      tmp = dst <> ".tmp"
      File.cp!(src, tmp)
      File.rename!(tmp, dst)
    end

    {:ok, []}
  end

  defp stale?(src, dst) do
    not File.exists?(dst) or File.stat!(src).mtime > File.stat!(dst).mtime or
      File.stat!(src).size != File.stat!(dst).size
  end

  defp cmake!(args) do
    case System.cmd("cmake", args, stderr_to_stdout: true) do
      {_out, 0} ->
        :ok

      {out, status} ->
        Mix.raise("cmake #{Enum.join(args, " ")} failed (#{status}):\n#{out}")
    end
  end
end

defmodule Emily.MixProject do
  use Mix.Project

  @version "0.1.0"

  def project do
    [
      app: :emily,
      version: @version,
      elixir: "~> 1.17",
      compilers: [:emily_native] ++ Mix.compilers(),
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      elixirc_paths: elixirc_paths(Mix.env()),
      test_paths: ["test/emily"],
      description: "Nx backend and compiler on a native C engine (CPU and NVIDIA GPUs)"
    ]
  end

  def application do
    [extra_applications: [:logger], mod: {Emily.Application, []}]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  # Nx is declared the normal way; EMILY_NX_PATH points at a local checkout
  # (the Nx ecosystem's convention for offline and development builds).
  defp deps do
    case System.get_env("EMILY_NX_PATH") do
      nil -> [{:nx, "~> 0.13"}]
      path -> [{:nx, path: path, override: true}]
    end
  end
end
