"""pf-status-relay node agent: sets SR-IOV VF link states from the LACP state of their PF."""
