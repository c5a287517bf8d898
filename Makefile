# pf-status-relay: build, test, deploy and package the operator.
# Run `make help` for the list of targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= 0.1.0
IMAGE_TAG_BASE ?= quay.io/openshift/pf-status-relay-operator
IMG ?= $(IMAGE_TAG_BASE):v$(VERSION)
BUNDLE_IMG ?= $(IMAGE_TAG_BASE)-bundle:v$(VERSION)
CATALOG_IMG ?= $(IMAGE_TAG_BASE)-catalog:v$(VERSION)
KIND_CLUSTER ?= pf-status-relay
KIND_IMG ?= pf-status-relay-operator:dev

PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
KUBECTL ?= kubectl
LOCALBIN ?= $(CURDIR)/bin
KIND_VERSION ?= v0.33.0
KIND ?= $(LOCALBIN)/kind
# Container engine: the first of docker and podman whose daemon answers.
CONTAINER_TOOL ?= $(shell for t in docker podman; do command -v $$t >/dev/null && $$t info >/dev/null 2>&1 && { echo $$t; break; }; done)

export PFSR_CACHE_DIR ?= $(HOME)/.cache/pf-status-relay

.PHONY: all
all: lint test

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the Python virtual environment with the project and its test tools.

.PHONY: manifests
manifests: venv ## Generate the CRD under config/crd/bases and bundle/manifests from api/.
	$(PYTHON) -m hack.manifests.generate

.PHONY: fmt
fmt: venv ## Format the Python code with ruff.
	$(VENV)/bin/ruff format api controller nodeagent hack tests
	$(VENV)/bin/ruff check --fix api controller nodeagent hack tests

.PHONY: lint
lint: venv ## Run ruff and mypy --strict on the product code.
	$(VENV)/bin/ruff check api controller nodeagent hack tests
	$(VENV)/bin/mypy

.PHONY: test
test: venv ## Run every test tier: unit, API server, kernel guest and end to end (what CI runs).
	$(MAKE) test-unit
	$(MAKE) test-apiserver
	$(MAKE) test-kernel
	$(MAKE) test-e2e

.PHONY: test-unit
test-unit: venv ## Run the unit tests on the host (no kernel guest, no API server).
	$(PYTHON) -m pytest tests/unit -v

.PHONY: run
run: venv ## Run the controller against the current kube context.
	$(VENV)/bin/pf-status-relay-controller --health-probe-bind-address=:8081 --metrics-bind-address=:8080

-include hack/kernel/kernel.mk
-include hack/apiserver/apiserver.mk
-include hack/e2e/e2e.mk
-include hack/bench/bench.mk

##@ Build

.PHONY: docker-build
docker-build: ## Build the operator image (controller and agent) with docker or podman.
	@test -n "$(CONTAINER_TOOL)" || { echo "error: no container engine answers (tried docker and podman); install one and start its daemon, or set CONTAINER_TOOL" >&2; exit 1; }
	$(CONTAINER_TOOL) build -t $(IMG) -f Containerfile .

.PHONY: docker-push
docker-push: ## Push the operator image.
	@test -n "$(CONTAINER_TOOL)" || { echo "error: no container engine answers (tried docker and podman)" >&2; exit 1; }
	$(CONTAINER_TOOL) push $(IMG)

##@ Deployment

.PHONY: install
install: ## Install the CRD into the cluster of the current kube context.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRD (and every PFLACPMonitor) from the cluster.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: ## Deploy the operator to the current kube context (kind overlay unless OVERLAY is set).
	$(KUBECTL) apply --server-side -k config/$(or $(OVERLAY),kind)

.PHONY: undeploy
undeploy: ## Remove the operator from the current kube context.
	$(KUBECTL) delete --ignore-not-found -k config/$(or $(OVERLAY),kind)

$(KIND):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kind@$(KIND_VERSION)

.PHONY: kind
kind: $(KIND) ## Install kind into ./bin from the Go module proxy.

.PHONY: kind-deploy
kind-deploy: $(KIND) ## Create a kind cluster, load the image and deploy the operator into it.
	@test -n "$(CONTAINER_TOOL)" || { echo "error: kind needs a running docker or podman; none answers here" >&2; exit 1; }
	$(KIND) get clusters | grep -qx $(KIND_CLUSTER) || $(KIND) create cluster --name $(KIND_CLUSTER)
	$(MAKE) docker-build IMG=$(KIND_IMG)
	$(KIND) load docker-image $(KIND_IMG) --name $(KIND_CLUSTER)
	$(KUBECTL) --context kind-$(KIND_CLUSTER) apply --server-side -k config/kind

##@ OLM

.PHONY: bundle
bundle: manifests ## Generate the OLM bundle under bundle/ from config/.
	$(PYTHON) -m hack.manifests.bundle --version $(VERSION) --image $(IMG)

.PHONY: bundle-validate
bundle-validate: venv ## Validate bundle/ with the operator-framework validators.
	hack/bundle/validate.sh bundle

.PHONY: bundle-build
bundle-build: ## Build the bundle image.
	@test -n "$(CONTAINER_TOOL)" || { echo "error: no container engine answers (tried docker and podman)" >&2; exit 1; }
	$(CONTAINER_TOOL) build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: catalog
catalog: venv ## Generate the file-based catalog under catalog/.
	$(PYTHON) -m hack.manifests.catalog --version $(VERSION) --bundle-image $(BUNDLE_IMG)

.PHONY: catalog-build
catalog-build: catalog ## Build the catalog image.
	@test -n "$(CONTAINER_TOOL)" || { echo "error: no container engine answers (tried docker and podman)" >&2; exit 1; }
	$(CONTAINER_TOOL) build -f catalog.Dockerfile -t $(CATALOG_IMG) .
