"""Flower apps over the same client code and server round as the in-process engine.

``client_app`` (a ``flwr.clientapp.ClientApp``) trains through :meth:`Federation.run_client`;
``make_server_app(cfg)`` returns a ``flwr.serverapp.ServerApp`` whose strategy is Flower's
``FedAvg`` sampling and minimum-clients rule with aggregation replaced by :func:`server_round`
(every semguard rule, FLTrust's root step included).  The server sends the run configuration
with each train message, so a SuperNode needs nothing but its ``partition-id``.

Engines: :func:`run_flower_simulation` (Flower's simulation runtime, Ray; shut down afterwards)
and the deployment (``flower-superlink``, ``flower-supernode``, ``flwr run``) in
:mod:`semguard.federated.deployment`.  The same apps run on other machines by pointing the
SuperNodes at the SuperLink's address.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from semguard.federated.client import ClientReply, LocalConfig
from semguard.federated import engine as _engine
from semguard.federated.engine import FLConfig, Federation, _root_update, evaluate, result_record

__all__ = ["client_app", "make_server_app", "server_app", "config_to_json", "config_from_json",
           "run_flower_simulation", "SemguardStrategy", "processes_with_marker", "stop_processes",
           "LocalGrid", "run_flower_local"]

log = logging.getLogger(__name__)


def config_to_json(cfg: FLConfig) -> str:
    return json.dumps(cfg.to_dict())


def config_from_json(text: str) -> FLConfig:
    d = json.loads(text)
    d["local"] = LocalConfig(**d["local"])
    d["crash"] = tuple(d["crash"])
    return FLConfig(**d)


_FEDERATIONS: dict[str, Federation] = {}  # one per run configuration and process (a SuperNode, a Ray actor)


def _federation(cfg_json: str) -> Federation:
    if cfg_json not in _FEDERATIONS:
        torch.set_num_threads(1)
        _FEDERATIONS.clear()
        _FEDERATIONS[cfg_json] = Federation(config_from_json(cfg_json))
    return _FEDERATIONS[cfg_json]


def _vec(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a).copy())


client_app = ClientApp()


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    cfg_json = str(msg.content["config"]["fl-config"])
    fed = _federation(cfg_json)
    cid = int(context.node_config["partition-id"])
    rnd = int(msg.content["config"]["server-round"])
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    vec = _vec(arrays[0])
    last = _vec(arrays[1]) if rnd > 1 else None
    reply = fed.run_client(cid, vec, rnd, last, fed.trainer())
    metrics = MetricRecord({"cid": cid, "num-examples": reply.num_examples,
                            "loss": 0.0 if reply.trained is False else float(reply.loss),
                            "trained": int(reply.trained), "collude": int(reply.collude)})
    upd = reply.update.numpy() if isinstance(reply.update, torch.Tensor) else np.asarray(reply.update)
    return Message(RecordDict({"arrays": ArrayRecord([upd]), "metrics": metrics}), reply_to=msg)


class SemguardStrategy(FedAvg):
    """Flower ``FedAvg`` sampling (all nodes, ``min_train_nodes`` = the minimum-clients rule) with
    aggregation by :func:`server_round` over the named semguard rule."""

    def __init__(self, fed: Federation) -> None:
        cfg = fed.cfg
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=cfg.min_replies,
                         min_available_nodes=cfg.clients)
        self.fed = fed
        self.agg = fed.aggregator()
        self.vec = fed.initial.clone()
        self.last: torch.Tensor | None = None
        self.rounds: list[dict[str, Any]] = []
        self.trainer = fed.trainer()
        self.connect_timeout_s = 120.0

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
                        ) -> Iterable[Message]:
        """FedAvg's sampling, once every SuperNode of the run has connected (up to ``connect_timeout_s``):
        FedAvg sizes its sample by the nodes connected at that moment."""
        t0 = time.monotonic()
        while len(list(grid.get_node_ids())) < self.fed.cfg.clients and time.monotonic() - t0 < self.connect_timeout_s:
            time.sleep(0.5)
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        got, failures = [], {}
        for msg in replies:
            if msg.has_error():
                failures[f"node {msg.metadata.src_node_id}"] = msg.error.reason
                continue
            m = msg.content["metrics"]
            arrs = msg.content["arrays"].to_numpy_ndarrays()
            upd = _vec(arrs[0]) if len(arrs) == 1 else None
            got.append(ClientReply(int(m["cid"]), upd, int(m["num-examples"]), float(m["loss"]),
                                   bool(m["trained"]), bool(m["collude"])))
        root = _root_update(self.fed, self.vec, server_round) if self.agg.needs_root else None
        new, rec = _engine.server_round(self.fed, self.agg, self.vec, got, failures, server_round, self.last, root)
        self.last, self.vec = new - self.vec, new
        rec.update(evaluate(self.fed, self.vec))
        if self.fed.dp_noise > 0:
            rec["epsilon"] = self.fed.epsilon_at(server_round)
        self.rounds.append(rec)
        return (ArrayRecord([self.vec.numpy(), self.last.numpy()]),
                MetricRecord({k: rec[k] for k in _engine.METRICS[self.fed.cfg.codec]}))


def _serve(grid: Grid, cfg: FLConfig, sink: list[dict[str, Any]], engine: str) -> None:
    torch.set_num_threads(1)
    fed = Federation(cfg)
    strategy = SemguardStrategy(fed)
    t0 = time.monotonic()
    zero = np.zeros_like(fed.initial.numpy())
    strategy.start(grid, ArrayRecord([fed.initial.numpy(), zero]), num_rounds=cfg.rounds,
                   train_config=ConfigRecord({"fl-config": config_to_json(cfg)}), timeout=600)
    sink.append(result_record(fed, strategy.rounds, strategy.vec, engine, time.monotonic() - t0, strategy.agg))


def make_server_app(cfg: FLConfig, sink: list[dict[str, Any]], engine: str = "simulation") -> ServerApp:
    """A ServerApp running ``cfg``; its result record is appended to ``sink``."""
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        _serve(grid, cfg, sink, engine)

    return app


# the deployment's ServerApp: the configuration and the output path come from the run config
server_app = ServerApp()


@server_app.main()
def _deployed_main(grid: Grid, context: Context) -> None:
    cfg = config_from_json(str(context.run_config["fl-config"]))
    sink: list[dict[str, Any]] = []
    _serve(grid, cfg, sink, "deployment")
    rec = sink[0]
    rec.pop("final_vector")
    with open(str(context.run_config["out"]), "w") as f:
        json.dump(rec, f)


class LocalGrid(Grid):
    """A Grid that delivers each message to ``client_app`` in this process (no Ray, no network):
    the Flower apps themselves, message by message, in milliseconds.  A client that raises
    answers with a Flower error reply, as a SuperNode does."""

    def __init__(self, n_nodes: int, app: ClientApp | None = None) -> None:
        self.app = app or client_app
        self.nodes = list(range(1, n_nodes + 1))
        self._run: Any = None

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("LocalGrid answers in send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("LocalGrid answers in send_and_receive")

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        out = []
        for msg in messages:
            node = msg.metadata.dst_node_id
            ctx = Context(run_id=0, node_id=node, node_config={"partition-id": node - 1,
                                                               "num-partitions": len(self.nodes)},
                          state=RecordDict(), run_config={})
            try:
                out.append(self.app(msg, ctx))
            except Exception as e:  # the runtime's behaviour: the failure becomes an error reply
                out.append(Message(Error(code=1, reason=f"{type(e).__name__}: {e}"), reply_to=msg))
        return out


def run_flower_local(cfg: FLConfig) -> dict[str, Any]:
    """``cfg`` through the Flower ServerApp and ClientApp over a :class:`LocalGrid`."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    # messages are stamped with the process's task identity, which a runtime sets; here we do
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = (0 if v is None else v for v in saved)
    sink: list[dict[str, Any]] = []
    try:
        _serve(LocalGrid(cfg.clients), cfg, sink, "flower-local")
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved
    return sink[0]


def processes_with_marker(marker: str) -> list[int]:
    """Ids of live processes whose environment holds ``SEMGUARD_FL_RUN=marker`` (Linux ``/proc``)."""
    needle = f"SEMGUARD_FL_RUN={marker}".encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(d))
        except OSError:
            continue
    return found


def stop_processes(pids: list[int], wait_s: float = 10.0) -> list[int]:
    """SIGTERM, then after ``wait_s`` SIGKILL, each of ``pids``; returns those still alive."""
    def alive(p: int) -> bool:
        try:
            os.kill(p, 0)
            with open(f"/proc/{p}/stat") as f:
                return f.read().split()[2] != "Z"
        except (OSError, IndexError):
            return False

    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait_s and any(alive(p) for p in pids):
        time.sleep(0.2)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    return [p for p in pids if alive(p)]


def run_flower_simulation(cfg: FLConfig) -> dict[str, Any]:
    """``cfg`` on Flower's simulation runtime (one virtual SuperNode per client, one CPU each).

    Ray is started by Flower and shut down before returning, also on error; Ray's worker
    processes carry a marker in their environment, and any still alive are then stopped by id."""
    from flwr.simulation import run_simulation

    marker = uuid.uuid4().hex
    old = os.environ.get("SEMGUARD_FL_RUN")
    os.environ["SEMGUARD_FL_RUN"] = marker
    sink: list[dict[str, Any]] = []
    try:
        run_simulation(server_app=make_server_app(cfg, sink), client_app=client_app, num_supernodes=cfg.clients,
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": 2, "include_dashboard": False}})
    finally:
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:  # pragma: no cover - flwr[simulation] brings ray
            pass
        left = processes_with_marker(marker)
        if left:
            log.info("stopping %d Ray processes left by the simulation: %s", len(left), left)
            stop_processes(left)
        if old is None:
            os.environ.pop("SEMGUARD_FL_RUN", None)
        else:
            os.environ["SEMGUARD_FL_RUN"] = old
    if not sink:
        raise RuntimeError("the Flower simulation ended without a result (see the Flower log above)")
    sink[0]["process_marker"] = marker
    return sink[0]
