# Kernel testbed: a qemu guest (TCG) running Debian's linux-source-6.12 with
# bonding, netdevsim and tc built in. Included from the top-level Makefile.

PYTHON ?= .venv/bin/python
KERNEL_PYTEST_ARGS ?=

##@ Kernel testbed

.PHONY: kernel-deps
kernel-deps: $(if $(VENV),venv) ## Install the Debian packages the kernel testbed needs (checks only when present).
	hack/kernel/deps.sh

.PHONY: kernel
kernel: kernel-deps ## Build the testbed kernel or reuse the cached one; prints the bzImage path.
	hack/kernel/build.sh

.PHONY: test-kernel
test-kernel: kernel ## Boot the guest once and run the kernel tier (tests/kernel, marker kernel) inside it.
	hack/kernel/run-in-guest.sh $(PYTHON) -m pytest -p no:cacheprovider tests/kernel -m kernel -v $(KERNEL_PYTEST_ARGS)

.PHONY: kernel-fixtures
kernel-fixtures: kernel ## Record the netlink fixtures under tests/fixtures/netlink in the guest.
	PFSR_RWDIRS="$(CURDIR)/tests/fixtures/netlink" hack/kernel/run-in-guest.sh $(PYTHON) hack/kernel/record_fixtures.py tests/fixtures/netlink

.PHONY: kernel-shell-check
kernel-shell-check: kernel ## Boot the guest and check that exit codes come back (true, false, a Python import).
	hack/kernel/run-in-guest.sh true
	! hack/kernel/run-in-guest.sh false
	hack/kernel/run-in-guest.sh $(PYTHON) -c 'import pyroute2, nodeagent; print("guest python ok")'
