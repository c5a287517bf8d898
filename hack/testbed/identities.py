"""Client identities of the API server testbed.

The testbed authenticates clients by static bearer tokens (kube-apiserver's
--token-auth-file), each mapped to a user name and groups. X.509 client
certificates cannot carry these identities, because a certificate's common
name is limited to 64 characters and the ServiceAccount user names are longer.
The controller and agent identities use the user names that Kubernetes gives
to ServiceAccount tokens (``system:serviceaccount:NAMESPACE:NAME``), because
RBAC matches a ServiceAccount subject by that user name alone. A RoleBinding
to the operator's ServiceAccounts therefore grants its rights to these
identities, with no token controller running.
"""

from __future__ import annotations

from dataclasses import dataclass

OPERATOR_NAMESPACE = "openshift-pf-status-relay-operator"
CONTROLLER_SERVICE_ACCOUNT = "pf-status-relay-controller"
AGENT_SERVICE_ACCOUNT = "pf-status-relay-agent"


@dataclass(frozen=True)
class Identity:
    """A user name and the groups that the API server assigns to it."""

    name: str
    user: str
    groups: tuple[str, ...]


def service_account_identity(name: str, namespace: str, service_account: str) -> Identity:
    """Build the identity that a token of the given ServiceAccount would have."""
    return Identity(
        name=name,
        user=f"system:serviceaccount:{namespace}:{service_account}",
        groups=(
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ),
    )


ADMIN = Identity(name="admin", user="admin", groups=("system:masters",))
CONTROLLER = service_account_identity("controller", OPERATOR_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT)
AGENT = service_account_identity("agent", OPERATOR_NAMESPACE, AGENT_SERVICE_ACCOUNT)

DEFAULT_IDENTITIES: tuple[Identity, ...] = (ADMIN, CONTROLLER, AGENT)
