defmodule Emily.BackendInspectTest do
  @moduledoc """
  Inspect's backend line. It is switched by the global :inspect_backend
  setting, which the doctests (async) expect off, so this module runs
  synchronously: ExUnit starts it only after every async module is done.
  """
  use ExUnit.Case, async: false
  import Emily.TestGen

  test "inspect shows the backend and the device when enabled" do
    Application.put_env(:emily, :inspect_backend, true)

    try do
      name =
        case device() do
          :cpu -> "cpu"
          {:cuda, n} -> "cuda:#{n}"
        end

      assert inspect(Nx.tensor([1, 2], backend: backend_of(:emily))) =~ "Emily.Backend<#{name}>"
    after
      Application.put_env(:emily, :inspect_backend, false)
    end
  end
end
