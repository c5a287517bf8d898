"""Real components that the integration tests start: kube-apiserver and etcd.

``hack.testbed.apiserver.APIServer`` starts both from the binaries that
``hack/apiserver/build.sh`` builds and caches.
"""
