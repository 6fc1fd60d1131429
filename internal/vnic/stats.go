package vnic

import "github.com/container-vnic/container_vnic_exporter/internal/rtnl"

// Stats are an interface's traffic counters (struct rtnl_link_stats64), as
// seen from that interface: Rx is what it received.
type Stats = rtnl.Stats

// LinkState is an interface's MTU, operational state and carrier.
type LinkState = rtnl.LinkState

// OperUp is the operational state "up" (IF_OPER_UP).
const OperUp = rtnl.OperUp
