defmodule Emily.Compiler do
  @moduledoc """
  An `Nx.Defn.Compiler` that runs `defn` on Emily.

      Nx.Defn.global_default_options(compiler: Emily.Compiler)
      Nx.Defn.jit(&MyModel.predict/2, compiler: Emily.Compiler).(params, x)

  This lane evaluates the expression with `Nx.Defn.Evaluator` while pinning
  `Emily.Backend` (options `device:` pass through), so `defn`, `Nx.Serving`
  and gradients work; the engine fuses the elementwise chains it sees at
  evaluation. Whole-graph lowering comes as a separate lane.
  """

  @behaviour Nx.Defn.Compiler

  @backend_keys [:device]

  @impl true
  def __jit__(key, vars, fun, args_list, opts) do
    __compile__(key, vars, fun, opts).(args_list)
  end

  @impl true
  def __compile__(key, vars, fun, opts) do
    {backend_opts, opts} = Keyword.split(opts, @backend_keys)
    backend = {Emily.Backend, backend_opts}
    compiled = Nx.Defn.Evaluator.__compile__(key, vars, fun, opts)

    fn args_list ->
      # The evaluator builds constants and intermediates on the process's
      # default backend: pin Emily for the duration of the call.
      previous = Nx.default_backend(backend)

      try do
        compiled.(args_list) |> Enum.map(&transfer(&1, backend))
      after
        Nx.default_backend(previous)
      end
    end
  end

  @impl true
  def __shard_jit__(_key, _mesh, _vars, _fun, _args_list, _opts) do
    raise ArgumentError, "Emily.Compiler does not support sharding yet"
  end

  @impl true
  def __partitions_options__(opts), do: [opts]

  @impl true
  def __to_backend__(opts), do: {Emily.Backend, Keyword.take(opts, @backend_keys)}

  defp transfer(result, backend) do
    Nx.Defn.Composite.traverse(result, fn
      %Nx.Tensor{data: %Emily.Backend{}} = t -> t
      %Nx.Tensor{} = t -> Nx.backend_transfer(t, backend)
      other -> other
    end)
  end
end
