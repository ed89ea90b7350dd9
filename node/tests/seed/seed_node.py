#!/usr/bin/env python3
"""Seed-style nodes for Floodgate's interoperability tests.

These are not Floodgate: they speak only the seed's JSON on the five topics, with the quirks that
public implementations of the same assignment are known to have (docs/protocol.md, "Other
implementations"), each switched on by a flag. They use kafka-python, a Kafka client other than
Floodgate's librdkafka, as the Python implementations do.

  seed_node.py driver --bootstrap B --prefix P --id ID --target URL [quirks...]
  seed_node.py orchestrator --bootstrap B --prefix P --drivers N [options...]

A driver registers, heartbeats and runs every test it is configured and triggered for against its
built-in target, as seed drivers do. Quirks that crash a real peer make this one exit with status 3
and a line starting "PANIC", so a test can tell a crash from a clean run.

The orchestrator waits for N drivers (registered, or heard heartbeating), sends one test_config, waits, sends the trigger,
and prints every metrics message it receives as one JSON line ("METRICS {...}"). It exits 0 once
every driver has sent a report saying it is done (`final` or a `test_status`), 1 on timeout.
"""

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.request
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

TOPICS = ["register", "test_config", "trigger", "metrics", "heartbeat"]


def log(*parts):
    print(*parts, flush=True)


def panic(why):
    log("PANIC", why)
    os._exit(3)


def ensure_topics(bootstrap, prefix):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for t in TOPICS:
            try:
                admin.create_topics([NewTopic(prefix + t, num_partitions=1, replication_factor=1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def consumer_at_end(bootstrap, topics):
    """A consumer without a group on every topic's partition 0, positioned at the end now."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    parts = [TopicPartition(t, 0) for t in topics]
    c.assign(parts)
    c.seek_to_end(*parts)
    for p in parts:
        c.position(p)  # resolves the end offset now, so nothing sent after this is missed
    return c


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------ driver


class Driver:
    def __init__(self, a):
        self.a = a
        self.configs = {}
        self.beating = False
        self.producer = KafkaProducer(bootstrap_servers=a.bootstrap)
        self.topic = lambda name: a.prefix + name

    def send(self, name, msg):
        self.producer.send(self.topic(name), json.dumps(msg).encode()).get(timeout=30)

    def register(self):
        msg = {"node_id": self.a.id}
        msg[self.a.ip_field] = "127.0.0.1"
        if not self.a.no_message_type:
            msg["message_type"] = "DRIVER_NODE_REGISTER"
        self.send("register", msg)

    def heartbeats(self, wait_first=False):
        if wait_first:
            time.sleep(self.a.heartbeat_s)
        while True:
            beat = {"node_id": self.a.id, "heartbeat": True if self.a.heartbeat_bool else "YES"}
            if self.a.timestamp == "seed":
                beat["timestamp"] = time.strftime("%Y-%m-%d %H:%M:%S")
            elif self.a.timestamp == "rfc3339":
                beat["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.send("heartbeat", beat)
            time.sleep(self.a.heartbeat_s)

    def on_config(self, c):
        if self.a.needs_int:
            for field in ("test_message_delay", "message_count_per_driver"):
                if field in c and not is_int(c[field]):
                    panic(f"{field} is not a JSON integer: {c[field]!r}")
        self.configs[str(c.get("test_id"))] = c
        log("CONFIG", json.dumps(c))

    def on_trigger(self, t):
        if self.a.strict_trigger and t.get("trigger") != "YES":
            panic(f"trigger value {t.get('trigger')!r} is not YES")
        if self.a.heartbeat_after_trigger and not self.beating:
            self.beating = True
            threading.Thread(target=self.heartbeats, args=(True,), daemon=True).start()
        c = self.configs.get(str(t.get("test_id")))
        if c is None:
            if self.a.panic_on_unknown:
                panic(f"trigger for unknown test {t.get('test_id')!r}")
            return
        self.run(c)

    def run(self, c):
        test_id = str(c["test_id"])
        delay = c.get("test_message_delay", 0)
        delay_s = float(delay) * (1.0 if self.a.delay_unit == "s" else 0.001)
        n = self.a.requests if self.a.requests else int(c["message_count_per_driver"])
        tsunami = str(c.get("test_type", "")).upper() == "TSUNAMI"
        log("RUN", test_id, "requests", n, "delay_s", delay_s)
        latencies = []
        lock = threading.Lock()
        done = threading.Event()

        def one():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.a.target, timeout=10) as r:
                    r.read()
                ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    latencies.append(ms)
            except Exception as e:  # a failed request is not timed, as seed drivers do
                log("request failed:", e)

        reporter = threading.Thread(target=self.report_loop, args=(test_id, latencies, lock, done, n), daemon=True)
        reporter.start()
        if tsunami:
            for i in range(n):
                one()
                if i + 1 < n:
                    time.sleep(delay_s)
        else:
            left = [n]

            def worker():
                while True:
                    with lock:
                        if left[0] == 0:
                            return
                        left[0] -= 1
                    one()

            workers = [threading.Thread(target=worker) for _ in range(8)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        done.set()
        reporter.join()
        log("DONE", test_id, "ok", len(latencies))
        if self.a.exit_after_test:
            os._exit(0)

    def report_loop(self, test_id, latencies, lock, done, n):
        seq = 0
        sent_before = 0
        while True:
            finished = done.wait(self.a.report_s)
            if self.a.report == "end" and not finished:
                continue
            with lock:
                snap = list(latencies)
            seq += 1
            self.send("metrics", self.metrics(test_id, snap, seq, finished, sent_before))
            sent_before = len(snap)
            if finished:
                return

    def metrics(self, test_id, snap, seq, finished, sent_before):
        def fmt(ms):
            if self.a.metrics == "string":
                return str(ms)
            if self.a.metrics == "duration":
                return f"{ms}ms"
            return ms

        m = {}
        if snap:
            m = {
                "mean_latency": fmt(statistics.fmean(snap)),
                "median_latency": fmt(statistics.median(snap)),
                "min_latency": fmt(min(snap)),
                "max_latency": fmt(max(snap)),
            }
        else:
            m = {k: fmt(0.0) for k in ("mean_latency", "median_latency", "min_latency", "max_latency")}
        report_id = {"empty": "", "uuid": str(uuid.uuid4()), "int": seq}[self.a.report_id]
        msg = {"node_id": self.a.id, "test_id": test_id, "report_id": report_id, "metrics": m}
        if self.a.counts == "num_requests":
            m["num_requests"] = len(snap)
        elif self.a.counts == "delta":
            msg["no_of_req"] = len(snap) - sent_before
        if self.a.status:
            msg["test_status"] = "complete" if finished else "running"
        return msg

    def serve(self):
        ensure_topics(self.a.bootstrap, self.a.prefix)
        inbox = consumer_at_end(self.a.bootstrap, [self.topic("test_config"), self.topic("trigger")])
        self.register()
        if not self.a.heartbeat_after_trigger:
            self.beating = True
            threading.Thread(target=self.heartbeats, daemon=True).start()
        log("REGISTERED", self.a.id)
        for msg in inbox:
            try:
                value = json.loads(msg.value)
            except ValueError:
                continue  # EOT and the like
            if not isinstance(value, dict):
                continue
            if msg.topic == self.topic("test_config"):
                self.on_config(value)
            elif msg.topic == self.topic("trigger"):
                log("TRIGGER", json.dumps(value))
                self.on_trigger(value)


# ------------------------------------------------------------------------------ orchestrator


def orchestrate(a):
    ensure_topics(a.bootstrap, a.prefix)
    topic = lambda name: a.prefix + name
    inbox = consumer_at_end(a.bootstrap, [topic("register"), topic("metrics"), topic("heartbeat")])
    producer = KafkaProducer(bootstrap_servers=a.bootstrap)
    send = lambda name, msg: producer.send(topic(name), json.dumps(msg).encode()).get(timeout=30)
    log("ORCHESTRATOR READY")
    deadline = time.time() + a.timeout_s
    drivers = set()
    test_id = "".join(random.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20))
    done = set()
    sent_config = False
    while time.time() < deadline:
        for records in inbox.poll(timeout_ms=200).values():
            for msg in records:
                try:
                    value = json.loads(msg.value)
                except ValueError:
                    continue
                # A driver is known from its registration, or from its heartbeats if it
                # registered before this orchestrator started listening.
                is_driver = value.get("message_type", "DRIVER_NODE_REGISTER") == "DRIVER_NODE_REGISTER"
                if msg.topic in (topic("register"), topic("heartbeat")) and is_driver and not sent_config:
                    if value.get("node_id") not in drivers:
                        log("DRIVER", value.get("node_id"))
                    drivers.add(value.get("node_id"))
                elif msg.topic == topic("metrics") and value.get("test_id") == test_id:
                    log("METRICS", json.dumps(value))
                    if value.get("final") is True or value.get("test_status") in ("complete", "completed", "refused", "stopped"):
                        done.add(value["node_id"])
        if not sent_config and len(drivers) >= a.drivers:
            config = {"test_id": test_id, "test_type": a.test_type, "test_message_delay": a.delay}
            if a.count is not None:
                config["message_count_per_driver"] = a.count
            if a.target_field and a.target_url:
                config[a.target_field] = a.target_url
            send("test_config", config)
            log("SENT CONFIG", json.dumps(config))
            time.sleep(a.gap_s)
            send("trigger", {"test_id": test_id, "trigger": "YES"})
            log("SENT TRIGGER", test_id)
            sent_config = True
        if sent_config and drivers and drivers <= done:
            log("ALL DONE", test_id)
            return 0
    log("TIMEOUT", "drivers", sorted(drivers), "done", sorted(done))
    return 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    d = sub.add_parser("driver")
    o = sub.add_parser("orchestrator")
    for q in (d, o):
        q.add_argument("--bootstrap", required=True)
        q.add_argument("--prefix", default="")
    d.add_argument("--id", default="DRIVER_%d_%d" % (time.time(), random.randint(1, 10**6)))
    d.add_argument("--target", required=True, help="the built-in target URL")
    d.add_argument("--requests", type=int, default=0, help="a fixed count, whatever the config says")
    d.add_argument("--delay-unit", choices=["s", "ms"], default="s")
    d.add_argument("--heartbeat-s", type=float, default=1.0)
    d.add_argument("--heartbeat-after-trigger", action="store_true", help="first heartbeat one interval after the first trigger")
    d.add_argument("--heartbeat-bool", action="store_true", help='"heartbeat": true instead of "YES"')
    d.add_argument("--timestamp", choices=["none", "seed", "rfc3339"], default="none")
    d.add_argument("--ip-field", default="node_IP")
    d.add_argument("--no-message-type", action="store_true")
    d.add_argument("--metrics", choices=["float", "string", "duration"], default="float")
    d.add_argument("--report-id", choices=["empty", "uuid", "int"], default="empty")
    d.add_argument("--report", choices=["every", "end"], default="every")
    d.add_argument("--report-s", type=float, default=1.0)
    d.add_argument("--counts", choices=["none", "num_requests", "delta"], default="none")
    d.add_argument("--status", action="store_true", help='send test_status "running"/"complete"')
    d.add_argument("--strict-trigger", action="store_true", help="panic on a trigger value other than YES")
    d.add_argument("--panic-on-unknown", action="store_true", help="panic on a trigger for an unknown test")
    d.add_argument("--needs-int", action="store_true", help="panic unless the delay and count are JSON integers")
    d.add_argument("--exit-after-test", action="store_true")
    o.add_argument("--drivers", type=int, default=2)
    o.add_argument("--test-type", default="AVALANCHE")
    o.add_argument("--delay", type=float, default=0)
    o.add_argument("--count", type=int)
    o.add_argument("--target-field", help="also name the target, under this flat field")
    o.add_argument("--target-url")
    o.add_argument("--gap-s", type=float, default=1.0)
    o.add_argument("--timeout-s", type=float, default=90)
    a = p.parse_args()
    if a.role == "driver":
        Driver(a).serve()
        return 0
    if float(a.delay).is_integer():
        a.delay = int(a.delay)
    return orchestrate(a)


if __name__ == "__main__":
    sys.exit(main())
