"""kube-proxy: Services and EndpointSlices programmed into nftables on each node."""
