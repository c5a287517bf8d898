# Makefile fragment of the kube-apiserver testbed, included by the top Makefile.
#
# `make apiserver` builds kube-apiserver and etcd from Go modules, or reuses
# them from ${PFSR_CACHE_DIR:-$HOME/.cache/pf-status-relay}/apiserver.
# `make test-apiserver` builds them first and runs tests/apiserver against them.

PYTHON ?= .venv/bin/python
APISERVER_BUILD := hack/apiserver/build.sh
# Create the venv first when the top Makefile, which defines VENV, includes this.
APISERVER_TEST_DEPS := apiserver $(if $(VENV),venv)

##@ API server testbed

.PHONY: apiserver
apiserver: ## Build kube-apiserver and etcd for the testbed, or reuse the cached build (cold: minutes).
	@if command -v go >/dev/null 2>&1; then \
		$(APISERVER_BUILD); \
	else \
		echo "apiserver: go not found in PATH, so kube-apiserver is not built and tests/apiserver will be skipped" >&2; \
	fi

.PHONY: test-apiserver
test-apiserver: $(APISERVER_TEST_DEPS) ## Run tests/apiserver against a real kube-apiserver and etcd.
	$(PYTHON) -m pytest tests/apiserver -m apiserver -v
