# workerd with one SQLite-backed Durable Object namespace on local disk, for `just bench`.
# The benchmark starts it as:
#   workerd serve config.capnp --socket-addr http=127.0.0.1:PORT --directory-path objects=DIR
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "front", worker = .benchWorker),
    (name = "objects", disk = (path = "objects", writable = true)),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8788", http = (), service = "front"),
  ],
);

const benchWorker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2025-09-01",
  durableObjectNamespaces = [
    (className = "Bench", uniqueKey = "opendo-bench-object", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "objects"),
  bindings = [(name = "BENCH", durableObjectNamespace = "Bench")],
);
