defmodule Emily do
  @moduledoc """
  Nx on a native C engine: CPU by default, NVIDIA GPUs when present.

      Nx.global_default_backend(Emily.Backend)
      Nx.Defn.global_default_options(compiler: Emily.Compiler)

  See `Emily.Backend`, `Emily.Compiler` and `Emily.Memory`.
  """

  @doc "Threads in the engine's CPU pool (`EMILY_NUM_THREADS` overrides)."
  def cpu_threads, do: Emily.Native.num_threads()

  @doc "Number of CUDA devices the engine can use (0 without CUDA)."
  def cuda_device_count, do: Emily.Native.device_count(:cuda)
end
