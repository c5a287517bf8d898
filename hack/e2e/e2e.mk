# End-to-end demo and its test, included by the top Makefile.
#
# Both need the guest kernel (hack/kernel) and kube-apiserver with etcd
# (hack/apiserver); their targets reuse the cached builds or build them once.

PYTHON ?= .venv/bin/python
E2E_DEPS := $(if $(VENV),venv) kernel apiserver

##@ End to end

.PHONY: demo
demo: $(E2E_DEPS) ## Run the whole product on one machine: API server, controller, and a kernel guest as the node.
	$(PYTHON) -m hack.e2e.demo

.PHONY: test-e2e
test-e2e: $(E2E_DEPS) ## Run the demo's story as a test (tests/e2e, marker e2e).
	$(PYTHON) -m pytest tests/e2e -v -rP
