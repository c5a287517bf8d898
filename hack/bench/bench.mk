# Benchmarks: the node agent in the kernel guest against an upstream-style agent, and the
# controller against a real API server. Included from the top-level Makefile.

PYTHON ?= .venv/bin/python
# Raw JSON results and logs; _out/ is ignored by git.
BENCH_RESULTS ?= $(CURDIR)/_out/bench
# Failure cycles per agent and failure mode; 20 cycles keep the full run near 20 minutes
# on 2 cores under TCG.
BENCH_CYCLES ?= 20
BENCH_VFS ?= 8
BENCH_IDLE_SECONDS ?= 60
BENCH_MAX_VFS ?= 256
BENCH_NODES ?= 100,1000,5000
BENCH_IN_FLIGHT ?= 50
BENCH_TIMEOUT ?= 300

##@ Benchmarks

.PHONY: bench
bench: ## Run the benchmarks and write docs/benchmarks.md.
	$(MAKE) bench-agent
	$(MAKE) bench-controller
	$(PYTHON) -m hack.bench.report --results $(BENCH_RESULTS) --output docs/benchmarks.md

.PHONY: bench-agent
bench-agent: kernel ## Agent half: reaction times, VF scaling, memory and idle CPU in the qemu guest.
	mkdir -p $(BENCH_RESULTS)
	PFSR_RESULTS=$(BENCH_RESULTS) hack/kernel/run-in-guest.sh $(PYTHON) -m hack.bench.agent_bench \
		--cycles $(BENCH_CYCLES) --vfs $(BENCH_VFS) --idle-seconds $(BENCH_IDLE_SECONDS) \
		--max-vfs $(BENCH_MAX_VFS)

.PHONY: bench-controller
bench-controller: venv apiserver ## Controller half: N simulated agents reporting at once to a real API server.
	mkdir -p $(BENCH_RESULTS)
	$(PYTHON) -m hack.bench.controller_bench --nodes $(BENCH_NODES) \
		--in-flight $(BENCH_IN_FLIGHT) --timeout $(BENCH_TIMEOUT) --out $(BENCH_RESULTS)
