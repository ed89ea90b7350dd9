# Floodgate: the README's two commands are `make demo` (the main job) and `make test`.
.PHONY: demo test check bench lint fmt build clean kafka-start kafka-stop generate images cluster cluster-down

demo:          ## build, start Kafka + target + orchestrator + 2 drivers, run both test types
	bash scripts/demo.sh

test:          ## lint, build, start a real Kafka, run every test (what CI runs)
	bash scripts/test.sh

check:         ## the fast tier: fmt, clippy, unit tests (in-memory bus, no services)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo test --workspace --lib --locked
	cargo test -p floodgate-target --tests --locked

bench:         ## the load engine beside wrk on the same target; prints ratios
	bash scripts/bench.sh

images:        ## the node, operator and target images (+ runtime base, pause) with podman, offline
	bash scripts/k8s/images.sh build

cluster:       ## a real single-node Kubernetes in a network namespace, images loaded (docs/kubernetes.md)
	bash scripts/k8s/cluster.sh build
	bash scripts/k8s/images.sh build
	bash scripts/k8s/cluster.sh up
	@echo 'now: eval "$$(bash scripts/k8s/cluster.sh env)"'

cluster-down:  ## stop that cluster and leave the machine as it was
	bash scripts/k8s/cluster.sh down

generate:      ## regenerate the LoadTest CRD from the Rust types (crds/ and the chart's copy)
	cargo run -q -p floodgate-operator --bin crdgen > crds/loadtests.floodgate.dev.yaml
	cp crds/loadtests.floodgate.dev.yaml charts/floodgate/crds/loadtests.floodgate.dev.yaml

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

build:
	cargo build --workspace --release

kafka-start:   ## a broker for manual use; prints its address
	bash scripts/kafka.sh start

kafka-stop:
	bash scripts/kafka.sh stop

clean:
	bash scripts/kafka.sh stop || true
	rm -rf build .run
