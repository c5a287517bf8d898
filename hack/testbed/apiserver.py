"""A real kube-apiserver with etcd on loopback, for tests and the demo.

``APIServer`` runs the binaries that hack/apiserver/build.sh builds from the
k8s.io/kubernetes Go module, with the flags that controller-runtime's envtest
uses: RBAC authorization, a serving certificate from a CA made for each
start, no ServiceAccount admission, and ServiceAccount token keys. Clients
authenticate with static bearer tokens (see hack.testbed.identities).
No controller-manager runs, so there is no garbage collection, no pod of a
DaemonSet and no namespace that finishes deleting.

Run ``python -m hack.testbed.apiserver --kubeconfig-dir DIR`` to keep a server
up until SIGINT or SIGTERM; it prints the path of the admin kubeconfig.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from hack.testbed.binaries import Binaries, BinariesNotFoundError, build_binaries, find_binaries
from hack.testbed.etcd import Etcd
from hack.testbed.identities import ADMIN, DEFAULT_IDENTITIES, Identity
from hack.testbed.kubeconfig import write_kubeconfig
from hack.testbed.pki import CertificateAuthority, generate_signing_key
from hack.testbed.process import ManagedProcess

LOG = logging.getLogger(__name__)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
FIELD_MANAGER = "pf-status-relay-testbed"
KUBECTL_ENV = "PFSR_KUBECTL"
# kube-apiserver v1.36.3 reached /readyz 2.6-3.3 s after start on 2 cores with
# a kernel build running in parallel (tests/apiserver). The limit leaves a wide
# margin for slower or busier machines.
DEFAULT_READY_TIMEOUT = 180.0


class APIServerError(RuntimeError):
    """Raised when kube-apiserver does not start or a request to it fails."""


class KubectlError(RuntimeError):
    """Raised when a kubectl command that must succeed fails."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    # NOTE: another process may take the port before the server binds it.
    # start() retries with new ports when a server exits on "address already in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _find_kubectl() -> str:
    path = os.environ.get(KUBECTL_ENV) or shutil.which("kubectl")
    if not path:
        raise KubectlError(f"kubectl not found in PATH; install it or set {KUBECTL_ENV}")
    return path


class APIServer:
    """kube-apiserver and etcd in a temporary folder, on free loopback ports.

    Use it as a context manager, or call start() and stop(). stop() kills both
    processes and removes the folder (logs included) unless ``keep_dir``.
    ``watch_cache=False`` (the default) makes kube-apiserver serve watches
    from etcd directly, so that compact_etcd() makes a watch from an older
    resourceVersion fail with 410 Gone at once. With the watch cache on,
    kube-apiserver keeps serving recent events from memory after a compaction.
    """

    def __init__(
        self,
        *,
        binaries: Binaries | None = None,
        kubeconfig_dir: Path | None = None,
        identities: Sequence[Identity] = DEFAULT_IDENTITIES,
        watch_cache: bool = False,
        extra_args: Sequence[str] = (),
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        keep_dir: bool = False,
    ) -> None:
        if not any(identity.name == ADMIN.name for identity in identities):
            raise ValueError(f"identities must include {ADMIN.name!r}, which start() uses")
        self._binaries = binaries
        self._kubeconfig_dir = kubeconfig_dir
        self._identities = {identity.name: identity for identity in identities}
        self._watch_cache = watch_cache
        self._extra_args = list(extra_args)
        self._ready_timeout = ready_timeout
        self._keep_dir = keep_dir

        self.root_dir: Path | None = None
        self.port = 0
        self._etcd: Etcd | None = None
        self._apiserver: ManagedProcess | None = None
        self._ca: CertificateAuthority | None = None
        self._tokens: dict[str, str] = {}
        self._kubeconfigs: dict[str, Path] = {}

    # Lifecycle

    def __enter__(self) -> APIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, attempts: int = 3) -> APIServer:
        """Start etcd and kube-apiserver, wait for /readyz and write kubeconfigs."""
        if self.root_dir is not None:
            raise APIServerError(f"already started in {self.root_dir}")
        binaries = self._binaries or find_binaries()
        self.root_dir = Path(tempfile.mkdtemp(prefix="pfsr-apiserver-"))
        started = time.monotonic()
        try:
            self._make_pki()
            for attempt in range(1, attempts + 1):
                try:
                    self._start_processes(binaries)
                    break
                except APIServerError as error:
                    self._stop_processes()
                    if "address already in use" not in str(error) or attempt == attempts:
                        raise
                    LOG.warning(
                        "port taken during start (attempt %s of %s), retrying", attempt, attempts
                    )
            self._write_kubeconfigs()
        except BaseException:
            self.stop()
            raise
        LOG.info(
            "kube-apiserver ready at %s after %.1f s (folder %s)",
            self.url,
            time.monotonic() - started,
            self.root_dir,
        )
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd, and remove the folder unless keep_dir.

        Kubeconfigs written to ``kubeconfig_dir`` are removed too, because
        their tokens and port are useless once the server is gone.
        """
        self._stop_processes()
        if self._kubeconfig_dir is not None:
            for path in self._kubeconfigs.values():
                path.unlink(missing_ok=True)
        self._kubeconfigs.clear()
        self._tokens.clear()
        if self.root_dir is not None and not self._keep_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)
        self.root_dir = None
        self._etcd = None
        self._apiserver = None

    def restart_apiserver(self) -> None:
        """Restart kube-apiserver on the same port and etcd, and wait for /readyz.

        Stored objects survive; open watches and connections break, as when
        a real control plane restarts.
        """
        apiserver = self._require_apiserver()
        apiserver.stop()
        apiserver.start()
        self._wait_ready(apiserver)

    def _require_apiserver(self) -> ManagedProcess:
        if self._apiserver is None:
            raise APIServerError("the API server is not started; call start() first")
        return self._apiserver

    def _require_root(self) -> Path:
        if self.root_dir is None:
            raise APIServerError("the API server is not started; call start() first")
        return self.root_dir

    def _make_pki(self) -> None:
        pki = self._require_root() / "pki"
        self._ca = CertificateAuthority.create(pki)
        self._ca.issue(
            pki,
            "serving",
            "kube-apiserver",
            server=True,
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
        )
        generate_signing_key(pki / "service-account.key", pki / "service-account.pub")
        self._write_token_file(pki / "tokens.csv")

    def _write_token_file(self, path: Path) -> None:
        # One CSV line per identity: token,user,uid,"group1,group2".
        lines = []
        for name, identity in self._identities.items():
            token = secrets.token_hex(32)
            self._tokens[name] = token
            groups = ",".join(identity.groups)
            lines.append(f'{token},{identity.user},{identity.user},"{groups}"')
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)

    def _start_processes(self, binaries: Binaries) -> None:
        root = self._require_root()
        logs = root / "logs"
        # A failed attempt may have left an etcd member with other peer URLs.
        shutil.rmtree(root / "etcd", ignore_errors=True)
        etcd = Etcd(
            binaries.etcd,
            root / "etcd",
            logs / "etcd.log",
            client_port=free_port(),
            peer_port=free_port(),
        )
        self._etcd = etcd
        try:
            etcd.start()
        except RuntimeError as error:
            raise APIServerError(str(error)) from error

        self.port = free_port()
        self._apiserver = ManagedProcess(
            "kube-apiserver",
            [str(binaries.kube_apiserver), *self._apiserver_args(root, etcd.url)],
            logs / "kube-apiserver.log",
        )
        self._apiserver.start()
        self._wait_ready(self._apiserver)

    def _apiserver_args(self, root: Path, etcd_url: str) -> list[str]:
        pki = root / "pki"
        args = [
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={root / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            f"--secure-port={self.port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # Pods need no ServiceAccount token, because no token controller runs.
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            f"--watch-cache={'true' if self._watch_cache else 'false'}",
        ]
        return args + self._extra_args

    def _stop_processes(self) -> None:
        if self._apiserver is not None:
            self._apiserver.stop()
        if self._etcd is not None:
            self._etcd.stop()

    def _wait_ready(self, apiserver: ManagedProcess) -> None:
        deadline = time.monotonic() + self._ready_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if not apiserver.running():
                raise APIServerError(
                    f"kube-apiserver exited with code {apiserver.exit_code()} during start; "
                    f"log {apiserver.log_path}:\n{apiserver.log_tail()}"
                )
            try:
                status, body = self._request("/readyz", ADMIN.name, timeout=5)
            except (OSError, ssl.SSLError) as error:
                last_error = str(error)
            else:
                if status == 200:
                    return
                last_error = f"HTTP {status}: {body[-2000:]}"
            time.sleep(0.25)
        raise APIServerError(
            f"kube-apiserver at {self.url} not ready after {self._ready_timeout} s "
            f"({last_error}); log {apiserver.log_path}:\n{apiserver.log_tail()}"
        )

    def _write_kubeconfigs(self) -> None:
        directory = self._kubeconfig_dir or self._require_root() / "kubeconfig"
        assert self._ca is not None
        for name, identity in self._identities.items():
            self._kubeconfigs[name] = write_kubeconfig(
                directory / f"{name}.kubeconfig",
                server=self.url,
                ca_cert=self._ca.cert,
                token=self._tokens[name],
                user=identity.user,
            )

    # Access

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self._require_root() / "logs"

    @property
    def ca_cert(self) -> Path:
        if self._ca is None:
            raise APIServerError("the API server is not started; call start() first")
        return self._ca.cert

    def kubeconfig(self, identity: str = ADMIN.name) -> Path:
        """Return the kubeconfig path of an identity ('admin', 'controller', 'agent')."""
        try:
            return self._kubeconfigs[identity]
        except KeyError:
            raise KeyError(
                f"no kubeconfig for identity {identity!r}; known: {sorted(self._kubeconfigs)}"
            ) from None

    def token(self, identity: str = ADMIN.name) -> str:
        """Return the bearer token of an identity."""
        try:
            return self._tokens[identity]
        except KeyError:
            raise KeyError(
                f"no token for identity {identity!r}; known: {sorted(self._tokens)}"
            ) from None

    def _request(self, path: str, identity: str, timeout: float = 30) -> tuple[int, str]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self.token(identity)}"},
            method="GET",
        )
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", errors="replace")

    def get_json(self, path: str, identity: str = ADMIN.name) -> Any:
        """GET ``path`` (for example '/version') as ``identity`` and decode the JSON body."""
        status, body = self._request(path, identity)
        if status != 200:
            raise APIServerError(f"GET {path} as {identity} failed with HTTP {status}: {body}")
        return json.loads(body)

    def kubectl(
        self,
        *args: str,
        identity: str = ADMIN.name,
        input: str | None = None,
        check: bool = False,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with the kubeconfig of ``identity`` and return its result.

        ``check=True`` raises KubectlError, with stderr, on a non-zero exit code.
        """
        argv = [
            _find_kubectl(),
            f"--kubeconfig={self.kubeconfig(identity)}",
            f"--cache-dir={self._require_root() / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(args)} as {identity} failed with exit code "
                f"{result.returncode}: {result.stderr.strip()}"
            )
        return result

    def apply(
        self,
        manifest: Path | str,
        *,
        server_side: bool = True,
        dry_run: bool = False,
        identity: str = ADMIN.name,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Apply manifests with kubectl and raise KubectlError if that fails.

        A Path is a file, or a folder (applied with -k when it contains a
        kustomization.yaml). A str is the YAML text itself.
        """
        args = ["apply"]
        if server_side:
            args += ["--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts"]
        if dry_run:
            args.append("--dry-run=server")
        if namespace is not None:
            args.append(f"--namespace={namespace}")

        text: str | None = None
        if isinstance(manifest, Path):
            if (manifest / "kustomization.yaml").is_file():
                args += ["-k", str(manifest)]
            else:
                args += ["-f", str(manifest)]
        else:
            args += ["-f", "-"]
            text = manifest
        return self.kubectl(*args, identity=identity, input=text, check=True)

    def etcd_revision(self) -> int:
        """Return etcd's current revision."""
        if self._etcd is None:
            raise APIServerError("the API server is not started; call start() first")
        return self._etcd.revision()

    def compact_etcd(self) -> int:
        """Compact etcd at its current revision and return that revision.

        A watch from any older resourceVersion then fails with 410 Gone.
        """
        if self._etcd is None:
            raise APIServerError("the API server is not started; call start() first")
        return self._etcd.compact()

    def processes_running(self) -> bool:
        """Return True while both etcd and kube-apiserver run."""
        return (
            self._etcd is not None
            and self._etcd.process.running()
            and self._apiserver is not None
            and self._apiserver.running()
        )


# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hack.testbed.apiserver",
        description="Run kube-apiserver and etcd on loopback until SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--kubeconfig-dir",
        type=Path,
        required=True,
        help="folder to write admin.kubeconfig, controller.kubeconfig and agent.kubeconfig to",
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="build the binaries with hack/apiserver/build.sh if they are not cached",
    )
    parser.add_argument(
        "--watch-cache",
        action="store_true",
        help="turn on the kube-apiserver watch cache (off by default, see APIServer)",
    )
    parser.add_argument(
        "--keep-dir",
        action="store_true",
        help="keep the temporary folder with data and logs after stopping",
    )
    return parser.parse_args(argv)


class _Stop(Exception):
    """Raised by the signal handler to leave the wait loop."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the testbed, print the admin kubeconfig path and wait for a signal."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        binaries = build_binaries() if args.build else find_binaries()
    except BinariesNotFoundError as error:
        LOG.error("%s", error)
        return 2

    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    server = APIServer(
        binaries=binaries,
        kubeconfig_dir=args.kubeconfig_dir.resolve(),
        watch_cache=args.watch_cache,
        keep_dir=args.keep_dir,
    )
    try:
        server.start()
        print(server.kubeconfig(ADMIN.name), flush=True)
        LOG.info("logs in %s; send SIGINT or SIGTERM to stop", server.log_dir)
        while server.processes_running():
            time.sleep(1)
        LOG.error("etcd or kube-apiserver exited; logs in %s", server.log_dir)
        return 1
    except _Stop as stop:
        LOG.info("received %s, stopping", stop)
        return 0
    finally:
        with contextlib.suppress(_Stop):
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
