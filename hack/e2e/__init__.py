"""End-to-end demo: the API server, the controller and a kernel guest as the node."""
