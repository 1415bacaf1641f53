"""`multus-webhook check`: the webhook's rules on manifests, before they reach a cluster."""
