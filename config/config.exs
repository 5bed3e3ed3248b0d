import Config

# Nx's doctests compare inspect/1 output with BinaryBackend's text, which
# has no backend line; everywhere else inspect shows backend and device.
config :emily, inspect_backend: config_env() != :test
